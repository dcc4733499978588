"""A run's progress as `status` shows it, read from the run store the Jobs write to.

From each run's directory: the last checkpoint step (LATEST), the tail of metrics.jsonl (step, wall-clock time
and loss of the last logged steps: it/s and ETA), the iteration count of config.json, and result.json once the run
has finished. Everything read is untrusted: a line or file that does not parse is skipped, never shown. The
store's endpoint, addressing and region come from [cluster] unless the environment sets them; a store that cannot
be reached is a note, never a failure of `status`.
"""

import json
import math
import os
import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from runner.cluster.config import ClusterConfig
from runner.cluster.names import HASH_KEY, RUN_ID_KEY, STORE_KEY, annotation
from runner.errors import UserError
from runner.layout import CONFIG_FILE, METRICS_FILE, RESULT_FILE, metrics_records
from runner.result import RunResult
from runner.store import BadKey, RunStore, open_store

if TYPE_CHECKING:
    from kubernetes.client import V1Job

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


@contextmanager
def store_environment(cluster: ClusterConfig) -> Iterator[None]:
    """The cluster's S3 endpoint, addressing and region for this process, unless the environment sets them."""
    wanted = {
        "AWS_ENDPOINT_URL_S3": cluster.s3_endpoint,
        "CLEL_S3_ADDRESSING": "" if cluster.s3_addressing == "auto" else cluster.s3_addressing,
        "AWS_DEFAULT_REGION": cluster.s3_region,
    }
    added = [key for key, value in wanted.items() if value and key not in os.environ]
    os.environ.update({key: wanted[key] for key in added})
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


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


def read_progress(jobs: list["V1Job"], cluster: ClusterConfig) -> tuple[dict[str, Progress], list[str]]:
    """Each Job's run progress from its store (by Job name), and notes (store unreachable, config mismatch)."""
    found: dict[str, Progress] = {}
    notes: list[str] = []
    by_store: dict[str, list[V1Job]] = {}
    for job in jobs:
        by_store.setdefault(annotation(job, STORE_KEY) or cluster.store, []).append(job)
    with store_environment(cluster):
        for uri, members in by_store.items():
            try:
                store = open_store(uri)
                store.check()
                for job in members:
                    try:
                        run = RunStore(store, annotation(job, RUN_ID_KEY) or "")
                        found[job.metadata.name], run_notes = run_progress(run)
                    except BadKey as err:  # a run-id annotation that is not a store key
                        notes.append(f"note: {job.metadata.name}: {err}")
                        continue
                    notes += run_notes + _config_mismatch(run, annotation(job, HASH_KEY))
            except (UserError, OSError, BotoCoreError, ClientError) as err:
                notes.append(f"note: progress unknown: {err} (set AWS_ENDPOINT_URL_S3 to a reachable endpoint)")
    return found, notes


def _config_mismatch(run: RunStore, expected: str | None) -> list[str]:
    try:
        stored = json.loads(run.store.read(run.key(CONFIG_FILE))).get("config_hash")
    except (KeyError, ValueError, AttributeError):
        return []
    if expected and stored != expected:
        return [
            f"warning: {run.run_id} in the store has config {stored}, its Job was rendered for {expected} "
            "(the image's experiments.toml differs from yours? `make image` and submit with that image)"
        ]
    return []
