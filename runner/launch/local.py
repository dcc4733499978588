"""The executor's answers for runs on this machine: their progress from the store, which process runs each, how to
stop it, and its log.

A process that writes a run on a local store holds a lock on the run's directory with its pid in it
(runner.store.ownership); a lock that can be taken is held by nobody. `cancel --local` sends that process
SIGTERM: the run checkpoints at the end of its step and exits with 75, and the same command resumes it. On an S3
store the run's lease says which host and pid hold it and until when; its process is not stopped from here. A
run's log is its metrics.jsonl as the store has it (one JSON record per logged step; untrusted lines skipped).
"""

import fcntl
import os
import signal
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Self

from runner.errors import UserError
from runner.launch.executor import Cancelled, Selection, StatusTable
from runner.layout import LOCK_FILE, METRICS_FILE, parse_run_id
from runner.plan.sweep_record import asked_runs
from runner.report.scan import open_checked, scan_store
from runner.run.status import Progress, progress_cells, run_progress
from runner.store import RunStore, Store, lease_holder
from runner.store.metrics_file import metrics_lines
from runner.text import text_table

FOLLOW_POLL_S = 2.0
LOCAL_HEADER = ["RUN", "PHASE", "STEP", "CKPT", "IT/S", "ETA", "LOSS", "RESULT", "HOLDER"]


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

    @property
    def held_by(self) -> str:
        if self.holder is not None:
            return self.holder
        return "-" if self.pid is None else str(self.pid)


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


def local_table(found: list[RunState]) -> str:
    """The table `status --local` prints: one row per run, with who holds it (a pid here, a lease on S3)."""
    rows = [[s.run_id, s.phase, *progress_cells(s.progress), s.held_by] for s in sorted(found, key=lambda s: s.run_id)]
    return text_table(LOCAL_HEADER, rows)


class LocalRuns:
    """Runs of a store on this machine: status, cancel and logs (InProcess and Subprocesses add submit)."""

    def __init__(self, store_uri: str):
        self.store_uri = store_uri

    @cached_property
    def store(self) -> Store:
        """The store, opened and checked once; a local store must exist: nothing is created by looking."""
        return open_checked(self.store_uri)

    @classmethod
    def for_command(cls, config: str, store: str) -> Self:
        return cls(store)

    def run_ids(self, selection: Selection) -> list[str]:
        """The selected runs of the store: those a sweep asked for (sweep.json) and those with a directory."""
        run_ids = set(asked_runs(self.store) or []) | scan_store(self.store).present()
        parsed = {run_id: parse_run_id(run_id) for run_id in run_ids}
        return sorted(r for r, p in parsed.items() if p is not None and selection.matches(p[0], p[3]))

    def states(self, run_ids: list[str]) -> list[RunState]:
        """Each run's progress and process."""
        store, found = self.store, []
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

    def status(self, selection: Selection) -> StatusTable:
        run_ids = self.run_ids(selection)
        if not run_ids:
            return StatusTable(f"no runs in {self.store_uri}")
        found = self.states(run_ids)
        return StatusTable(local_table(found), {s.run_id: s.progress for s in found})

    def cancel(self, selection: Selection) -> Cancelled:
        """SIGTERM to the process of each selected running run."""
        stopped = []
        for state in self.states(self.run_ids(selection)):
            if state.pid is not None:
                os.kill(state.pid, signal.SIGTERM)
                stopped.append(state.run_id)
        lines = [f"stopped {run_id} (SIGTERM: it checkpoints at the end of its step)" for run_id in stopped]
        return Cancelled(lines, f"{len(stopped)} run(s) stopped in {self.store_uri}")

    def logs(self, selection: Selection, follow: bool) -> None:
        """Each selected run's metrics.jsonl (a header per run when several); with `follow`, one run's as it grows,
        until its result.json is written or no process holds it."""
        run_ids = self.run_ids(selection)
        if not run_ids:
            print(f"no runs in {self.store_uri}")
            return
        if follow and len(run_ids) > 1:
            raise UserError(f"--follow follows one run: add --seed ({len(run_ids)} runs match in {self.store_uri})")
        store = self.store
        if not follow:
            for run_id in run_ids:
                if len(run_ids) > 1:
                    print(f"==> {run_id} <==")
                for line in self._log_lines(RunStore(store, run_id)):
                    print(line)
            return
        run, shown = RunStore(store, run_ids[0]), 0
        while True:
            lines = self._log_lines(run)
            for line in lines[shown:]:
                print(line, flush=True)
            shown = max(shown, len(lines))
            state = self.states([run.run_id])[0]
            if state.progress.result is not None or not state.running:
                return
            time.sleep(FOLLOW_POLL_S)

    @staticmethod
    def _log_lines(run: RunStore) -> list[str]:
        try:
            text = run.store.read(run.key(METRICS_FILE)).decode("utf-8", errors="replace")
        except KeyError:
            return []
        return metrics_lines(text)[0]
