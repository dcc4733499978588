"""How the runner writes text for a terminal: aligned tables and short durations (`status`, summarize's tables)."""


def aligned(rows: list[list[str]]) -> list[str]:
    """Rows of cells as lines: left-aligned columns separated by two spaces, no trailing blanks."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]


def text_table(header: list[str], rows: list[list[str]]) -> str:
    """A header and its rows as one aligned table."""
    return "\n".join(aligned([header, *rows]))


def duration(seconds_float: float) -> str:
    """Compact duration: 45s, 12m, 3h5m, 2d4h (negative counts as 0)."""
    seconds = max(int(seconds_float), 0)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600}h"
