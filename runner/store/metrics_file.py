"""metrics.jsonl as the store has it: its well-formed lines and records. The file comes from a store, so it is
untrusted: a line is kept only when it is a JSON object with an integer `step`."""

import json


def metrics_lines(text: str, up_to_step: int | None = None) -> tuple[list[str], int]:
    """The well-formed lines of a metrics.jsonl (with step <= up_to_step) and how many lines were dropped.

    metrics.jsonl comes from a store, so it is untrusted: a line is kept only when it is a JSON object with an
    integer `step`."""
    kept, dropped = [], 0
    for line in text.splitlines():
        try:
            record = json.loads(line)
            step = record["step"]
            if type(step) is not int:
                raise TypeError
        except (ValueError, KeyError, TypeError):
            dropped += bool(line.strip())
            continue
        if up_to_step is None or step <= up_to_step:
            kept.append(line)
    return kept, dropped


def metrics_records(text: str) -> list[dict]:
    """The well-formed records of a metrics.jsonl, in file order."""
    return [json.loads(line) for line in metrics_lines(text)[0]]
