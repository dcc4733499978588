"""How the report's numbers are written, in one place: the terminal tables, report.md and the README section."""


def number(value: float | None, digits: int = 3) -> str:
    """`digits` significant digits, '-' for none."""
    return "-" if value is None else f"{value:.{digits}g}"


def signed(value: float, digits: int = 4) -> str:
    """`digits` significant digits with the sign always written (a difference, a slope)."""
    return f"{value:+.{digits}g}"


def fixed(value: float | None, decimals: int = 3) -> str:
    """`decimals` decimals (AUROC, probes, probabilities), '-' for none."""
    return "-" if value is None else f"{value:.{decimals}f}"


def p_value(value: float | None) -> str:
    """A p-value: three decimals, scientific below 0.001, '-' for none."""
    if value is None:
        return "-"
    return f"{value:.1e}" if value < 1e-3 else f"{value:.3f}"


def interval(values: tuple[float | None, float | None] | None, write=number) -> str:
    """`[low, high]`, or '' when there is none."""
    if values is None or values[0] is None or values[1] is None:
        return ""
    return f"[{write(values[0])}, {write(values[1])}]"
