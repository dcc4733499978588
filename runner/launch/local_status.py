"""The state of runs on this machine: progress from their store, and which process runs each.

A process that writes a run on a local store holds a lock on the run's directory with its pid in it
(runner.store.ownership); a lock that can be taken is held by nobody. `cancel --local` sends that process
SIGTERM: the run checkpoints at the end of its step and exits with 75, and the same command resumes it. On an S3
store the run's lease says which host and pid hold it and until when; its process is not stopped from here.
"""

import fcntl
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from runner.layout import LOCK_FILE, parse_run_id
from runner.run.status import Progress, format_table, progress_cells, run_progress
from runner.store import RunStore, lease_holder, open_store


@dataclass(frozen=True)
class RunState:
    """One run: its progress in the store, and the pid of the process writing it (None: none here)."""

    run_id: str
    progress: Progress
    running: bool  # a process holds the run: its lock here, or its lease on an S3 store
    pid: int | None  # its pid, when it wrote one and it is a runner process on this machine
    holder: str | None = None  # on an S3 store: who holds the lease and until when

    @property
    def phase(self) -> str:
        if self.running:
            return "running"
        if self.progress.result is not None:
            return "finished"
        return "stopped" if self.progress.checkpoint_step else "pending"


def lock_holder(lock_path: Path) -> tuple[bool, int | None]:
    """(whether a process holds the run's lock, the pid it wrote there or None)."""
    try:
        with open(lock_path) as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                text = lock.read(32).strip()
                return True, int(text) if text.isdigit() else None
            fcntl.flock(lock, fcntl.LOCK_UN)
            return False, None
    except OSError:
        return False, None


def _is_runner(pid: int) -> bool:
    """Whether the process is a `python -m runner` (a pid reused by another program is left alone)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"runner" in command and b"-m" in command


def states(store_uri: str, run_ids: list[str]) -> list[RunState]:
    """Each run's progress and process."""
    store = open_store(store_uri)
    store.check()
    found = []
    for run_id in run_ids:
        run = RunStore(store, run_id)
        progress, _ = run_progress(run)
        folder = store.local_path(run.key(""))
        if folder is None:  # S3: the run's lease says who holds it
            holder = lease_holder(store, run_id)
            found.append(RunState(run_id, progress, holder is not None, None, holder and holder.text()))
            continue
        running, pid = lock_holder(folder / LOCK_FILE)
        found.append(RunState(run_id, progress, running, pid if pid is not None and _is_runner(pid) else None))
    return found


def stop(store_uri: str, run_ids: list[str]) -> list[str]:
    """SIGTERM to the process of each running run; the run ids stopped."""
    stopped = []
    for state in states(store_uri, run_ids):
        if state.pid is not None:
            os.kill(state.pid, signal.SIGTERM)
            stopped.append(state.run_id)
    return stopped


LOCAL_HEADER = ["RUN", "PHASE", "STEP", "CKPT", "IT/S", "ETA", "LOSS", "RESULT", "HOLDER"]


def _held_by(state: RunState) -> str:
    if state.holder is not None:
        return state.holder
    return "-" if state.pid is None else str(state.pid)


def local_table(found: list[RunState]) -> str:
    """The table `status --local` prints: one row per run, with who holds it (a pid here, a lease on S3)."""
    rows = [
        [s.run_id, s.phase, *progress_cells(s.progress), _held_by(s)] for s in sorted(found, key=lambda s: s.run_id)
    ]
    return format_table(LOCAL_HEADER, rows)


def store_runs(store_uri: str, experiment: str | None = None) -> list[str]:
    """The runs of a store: those a sweep asked for (sweep.json) and those with a directory, of one experiment
    when given."""
    from runner.plan.sweep_record import asked_runs
    from runner.report.scan import scan_store

    store = open_store(store_uri)
    store.check()
    run_ids = set(asked_runs(store) or []) | scan_store(store).present()
    return sorted(r for r in run_ids if experiment is None or (parse_run_id(r) or ("",))[0] == experiment)
