"""`python -m runner sweep`: experiments x grid points x seeds on this machine, then `summarize`.

The runs come from the one planner (runner.plan.planner); finished runs (result.json with the same config hash) are
skipped, unfinished ones resume from their last checkpoint, so the same command continues a sweep that was
stopped. Runs go one after another in this process (an overall bar above the current run's bar), or with
--parallel N as N `local` processes at a time (runner.launch.processes). Ctrl-C or SIGTERM: the running runs
checkpoint at the end of their step and the sweep exits with code 75.
"""

import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from tqdm import tqdm

from runner.config import DEFAULT_CONFIG_FILE, ExperimentsFile, parse_overrides
from runner.errors import EXIT_DIVERGED, Diverged, Preempted, UserError
from runner.launch.processes import InProcess, Outcome, Subprocesses
from runner.layout import RESULT_FILE
from runner.plan.planner import PlannedRun, parse_grid, plan_runs
from runner.plan.sweep_record import record_sweep
from runner.result import RunResult
from runner.run.bars import progress_bar
from runner.store import RunStore, Store, open_store


def check_plan_inputs(runs: list[PlannedRun]) -> None:
    """Every run's inputs checked (cache, data root, OOD files, FID weights) before the store is touched."""
    from runner.run.inputs import check_inputs

    checked = set()
    for run in runs:
        cfg = run.config
        inputs = (
            cfg.data.model_dump_json(),
            cfg.runtime.model_dump_json(),
            cfg.fid_features,
            cfg.eval.inception_weights,
        )
        if inputs not in checked:
            check_inputs(cfg)
            checked.add(inputs)


def finished_runs(store: Store, runs: list[PlannedRun]) -> list[str]:
    """The run ids whose result.json exists, parses and carries the run's config hash."""
    done = []
    for run in runs:
        try:
            result = RunResult.from_json(store.read(RunStore(store, run.run_id).key(RESULT_FILE)), run.run_id)
        except (KeyError, ValueError):
            continue
        if result.config_hash == run.config.config_hash:
            done.append(run.run_id)
    return done


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Between runs, Ctrl-C and SIGTERM stop the sweep as a preemption (a run in progress handles its own)."""

    def stop(signum: int, frame: Any) -> None:
        raise Preempted(f"{signal.Signals(signum).name}: sweep stopped; run the same command to continue")

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def raise_failures(outcome: Outcome) -> None:
    """Diverged if any run diverged, else UserError if any run failed; nothing when all finished."""
    if not outcome.failed:
        return
    listing = "; ".join(f"{run_id}: {line}" for run_id, (_, line) in outcome.failed.items())
    if EXIT_DIVERGED in {code for code, _ in outcome.failed.values()}:
        raise Diverged(f"{len(outcome.failed)} run(s) did not finish: {listing}")
    raise UserError(f"{len(outcome.failed)} run(s) did not finish: {listing}")


def sweep(
    profile: str,
    names: list[str] | None,
    seeds: list[int] | None,
    store_uri: str,
    device: str | None,
    parallel: int,
    iterations: int | None,
    overrides: list[str],
    config: str = DEFAULT_CONFIG_FILE,
    log: Callable[[str], None] = print,
    smoke: bool = False,
    grid: str | list[str] | None = None,
) -> None:
    """Run the sweep, then summarize the store; a run that did not finish makes it raise (after the summary)."""
    experiments = ExperimentsFile(config)
    values = parse_overrides(overrides)
    if iterations is not None:
        values["train.iterations"] = iterations
    if device is not None:
        values["runtime.device"] = device
    runs = plan_runs(experiments, profile, names, seeds, values, smoke, parse_grid(grid) if grid else None)
    check_plan_inputs(runs)
    store = open_store(store_uri)
    store.check()
    finished = set(finished_runs(store, runs))
    record_sweep(store, [run.run_id for run in runs], [run.config.point for run in runs])
    log(f"sweep: {len(runs)} runs ({len(finished)} finished, {len(runs) - len(finished)} to run) in {store.uri}")
    remaining = [run for run in runs if run.run_id not in finished]
    overall = progress_bar(total=len(runs), initial=len(finished), desc="sweep", unit="run")

    def report(run_id: str, line: str) -> None:
        tqdm.write(f"{run_id}: {line}", file=sys.stderr)

    with stop_on_signals(), overall:
        if parallel <= 1:
            outcome = InProcess(store_uri, report, overall).submit(remaining)
        else:
            cuda = bool(runs) and runs[0].config.runtime.device == "cuda"
            outcome = Subprocesses(store_uri, parallel, cuda, report, overall).submit(remaining)
    if outcome.skipped:
        log(
            f"sweep: {len(outcome.skipped)} run(s) held by another process were skipped (not failures; run the "
            f"sweep again once they finish): {', '.join(outcome.skipped)}"
        )
    if outcome.preempted:
        raise Preempted("a run was stopped (SIGTERM or Ctrl-C) and checkpointed; run the same command to continue")
    if finished or outcome.done:
        from runner.report.summary import summarize

        summarize(store.uri, None, config)
    raise_failures(outcome)
