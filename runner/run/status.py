"""A run's progress as `status` shows it, read from its directory in a store.

The last checkpoint step (LATEST), the tail of metrics.jsonl (step, wall-clock time and loss of the last logged
steps: it/s and ETA), the iteration count of config.json, and result.json once the run has finished. Everything
read is untrusted: a line or file that does not parse is skipped, never shown.
"""

import json
import math
import statistics
from dataclasses import dataclass
from typing import Any

from runner.layout import CONFIG_FILE, METRICS_FILE, RESULT_FILE
from runner.result import RunResult
from runner.store import RunStore
from runner.store.metrics_file import metrics_records
from runner.text import duration

TAIL_BYTES = 16 * 1024  # the last ~100 lines of metrics.jsonl
RATE_RECORDS = 10  # it/s is the median over the last this many logged intervals


@dataclass(frozen=True)
class Progress:
    """What the store says about one run; None where it does not say (yet)."""

    checkpoint_step: int | None = None
    step: int | None = None
    iterations: int | None = None
    rate: float | None = None  # iterations per second
    loss: float | None = None
    result: RunResult | None = None

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the current rate, while the run is unfinished."""
        if self.result is not None or not self.rate or self.step is None or self.iterations is None:
            return None
        return max(self.iterations - self.step, 0) / self.rate


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def metric_records(tail: bytes, whole: bool) -> list[tuple[int, float, float | None]]:
    """(step, time, loss) of the well-formed lines of a metrics.jsonl tail, in file order.

    A tail cut from a longer file starts inside a line: unless `whole`, its first line is dropped. Lines that are
    not JSON objects with an integer step >= 0 and a finite time are skipped.
    """
    lines = tail.decode("utf-8", errors="replace").splitlines()
    records = []
    for record in metrics_records("\n".join(lines if whole else lines[1:])):
        step, when = record["step"], _number(record.get("time"))
        if step >= 0 and when is not None:
            records.append((step, when, _number(record.get("loss"))))
    return records


def rate_of(records: list[tuple[int, float, float | None]]) -> float | None:
    """Iterations per second: the median over the last logged intervals (robust to one long pause, a restart)."""
    recent = records[-(RATE_RECORDS + 1) :]
    rates = [
        (step - last_step) / (when - last_when)
        for (last_step, last_when, _), (step, when, _) in zip(recent, recent[1:], strict=False)
        if step > last_step and when > last_when
    ]
    return statistics.median(rates) if rates else None


def _iterations(config: Any) -> int | None:
    train = config.get("config", {}).get("train", {}) if isinstance(config, dict) else {}
    iterations = train.get("iterations") if isinstance(train, dict) else None
    return iterations if type(iterations) is int and iterations > 0 else None


def run_progress(run: RunStore) -> tuple[Progress, list[str]]:
    """One run's progress, and notes about files that exist but cannot be used."""
    notes: list[str] = []
    try:
        config = json.loads(run.store.read(run.key(CONFIG_FILE)))
    except (KeyError, ValueError):
        config = None
    try:
        tail = run.store.read_tail(run.key(METRICS_FILE), TAIL_BYTES)
        records = metric_records(tail, whole=len(tail) < TAIL_BYTES)
    except KeyError:
        records = []
    result = None
    try:
        result = RunResult.from_json(run.store.read(run.key(RESULT_FILE)), run.run_id)
    except KeyError:
        pass
    except ValueError as err:
        notes.append(f"note: {run.run_id}/{RESULT_FILE} unreadable: {err}")
    last = records[-1] if records else None
    progress = Progress(
        checkpoint_step=run.latest_step(),
        step=last[0] if last else None,
        iterations=_iterations(config),
        rate=rate_of(records),
        loss=last[2] if last else None,
        result=result,
    )
    return progress, notes


def progress_cells(progress: Progress | None) -> list[str]:
    """STEP, CKPT, IT/S, ETA, LOSS and RESULT of a run ('-' where unknown)."""
    if progress is None:
        return ["-"] * 6
    step = "-" if progress.step is None else str(progress.step)
    if progress.step is not None and progress.iterations:
        step = f"{progress.step}/{progress.iterations}"
    result = "-"
    if progress.result is not None:
        fid = progress.result.fid
        result = "fid -" if fid is None else f"fid {fid:.2f}"
        result += " collapsed" if progress.result.collapsed else ""
    eta = progress.eta_s
    return [
        step,
        "-" if progress.checkpoint_step is None else str(progress.checkpoint_step),
        "-" if progress.rate is None else f"{progress.rate:.2f}",
        "-" if eta is None else duration(eta),
        "-" if progress.loss is None else f"{progress.loss:.4g}",
        result,
    ]
