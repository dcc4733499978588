"""Reading a store: finished runs (validated result.json), runs still in progress, unreadable result files."""

import math
from dataclasses import dataclass, field

from runner.errors import UserError
from runner.layout import CONFIG_FILE, LATEST, RESULT_FILE, TENSORBOARD_DIR
from runner.report.stats import SCORES
from runner.result import AurocScores, RunResult
from runner.store import RunStore, Store, open_store


def _finite(value: float | None, where: str, notes: list[str]) -> float | None:
    if value is None or math.isfinite(value):
        return value
    notes.append(f"{where} is {value}: counted as missing")
    return None


def _finite_scores(scores: AurocScores, where: str, notes: list[str]) -> AurocScores:
    return AurocScores(**{score: _finite(getattr(scores, score), f"{where}.{score}", notes) for score in SCORES})


def read_result(data: bytes, run_id: str) -> RunResult:
    """Validate the result.json of run directory run_id; a NaN or infinite metric becomes None with a note."""
    result = RunResult.from_json(data, run_id)
    notes = list(result.notes)
    fid = _finite(result.fid, "fid", notes)
    auroc = {name: _finite_scores(scores, f"auroc.{name}", notes) for name, scores in result.auroc.items()}
    fid_init = _finite(result.fid_init, "fid_init", notes)
    return result.model_copy(update={"fid": fid, "auroc": auroc, "fid_init": fid_init, "notes": notes})


@dataclass
class StoreScan:
    """What a store holds: finished runs, runs without result.json yet, and skipped result files."""

    results: list[RunResult] = field(default_factory=list)
    running: dict[str, str] = field(default_factory=dict)  # run_id -> "step N" / "no checkpoint yet"
    skipped: dict[str, str] = field(default_factory=dict)  # run_id -> why its result.json was skipped

    def present(self) -> set[str]:
        """Every run directory seen, whatever its state."""
        return {r.run_id for r in self.results} | set(self.running) | set(self.skipped)


def open_checked(uri: str) -> Store:
    """The store, after its reachability check; a local store must already exist."""
    store = open_store(uri)
    root = store.local_path("")
    if root is not None and not root.is_dir():
        raise UserError(f"store {store.uri}: no such directory")
    store.check()
    return store


def _run_files(store: Store) -> dict[str, set[str]]:
    runs: dict[str, set[str]] = {}
    for key in store.list(""):
        run_id, sep, rest = key.partition("/")
        if sep and run_id != TENSORBOARD_DIR:
            runs.setdefault(run_id, set()).add(rest)
    return runs


def _progress(store: Store, run_id: str, names: set[str]) -> str:
    if LATEST not in names:
        return "no checkpoint yet"
    step = RunStore(store, run_id).latest_step()
    return "checkpoint pointer unreadable" if step is None else f"step {step}"


def scan_store(store: Store) -> StoreScan:
    """Read every <run_id>/result.json; runs with checkpoints or a config but no result are in progress."""
    scan = StoreScan()
    for run_id, names in sorted(_run_files(store).items()):
        if RESULT_FILE in names:
            try:
                scan.results.append(read_result(store.read(f"{run_id}/{RESULT_FILE}"), run_id))
            except ValueError as err:
                scan.skipped[run_id] = str(err)
            except KeyError:
                continue  # removed between listing and reading
        elif LATEST in names or CONFIG_FILE in names:
            scan.running[run_id] = _progress(store, run_id, names)
    return scan
