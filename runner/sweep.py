"""`python -m runner sweep`: the ablation matrix (experiments x seeds) on this machine, then `summarize`.

Finished runs (result.json with the same config hash) are skipped, unfinished ones resume from their last
checkpoint, so the same command continues a sweep that was stopped. Runs go one after another in this process
(an overall bar above the current run's bar), or with --parallel N as N `local` processes at a time, one per
GPU (CUDA_VISIBLE_DEVICES) or sharing the CPU cores. Ctrl-C or SIGTERM: the running runs checkpoint at the end of
their step and the sweep exits with code 75.
"""

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from runner.config import DEFAULT_CONFIG_FILE, ExperimentsFile, RunConfig
from runner.errors import EXIT_DIVERGED, EXIT_PREEMPTED, EXIT_USER_ERROR, Diverged, Preempted, UserError
from runner.layout import RESULT_FILE
from runner.progress import nested, progress_bar
from runner.report.sweep import record_sweep
from runner.result import RunResult
from runner.store import RunStore, Store, open_store


@dataclass
class SweepPlan:
    """The runs of a sweep, resolved and checked before anything runs."""

    runs: list[RunConfig]
    finished: list[str] = field(default_factory=list)  # run ids whose result.json has the same config hash

    @property
    def remaining(self) -> list[RunConfig]:
        return [cfg for cfg in self.runs if cfg.run_id not in self.finished]


@dataclass
class SweepOutcome:
    """What happened to each run that was started."""

    done: list[str] = field(default_factory=list)
    failed: dict[str, tuple[int, str]] = field(default_factory=dict)  # run id -> (exit code, last line)
    preempted: bool = False

    def raise_failures(self) -> None:
        """Diverged if any run diverged, else UserError if any run failed; nothing when all finished."""
        if not self.failed:
            return
        codes = {code for code, _ in self.failed.values()}
        listing = "; ".join(f"{run_id}: {line}" for run_id, (_, line) in self.failed.items())
        if EXIT_DIVERGED in codes:
            raise Diverged(f"{len(self.failed)} run(s) did not finish: {listing}")
        raise UserError(f"{len(self.failed)} run(s) did not finish: {listing}")


def plan_sweep(
    experiments: ExperimentsFile,
    profile: str,
    names: list[str] | None,
    seeds: list[int] | None,
    overrides: dict[str, Any],
    smoke: bool = False,
) -> SweepPlan:
    """Resolve every run (UserError on any bad name or value); experiments and seeds default to the file's."""
    chosen = names or list(experiments.experiments)
    if len(set(chosen)) != len(chosen):
        raise UserError("--exp: an experiment is listed twice")
    seeds = seeds if seeds is not None else experiments.seeds()
    if len(set(seeds)) != len(seeds):
        raise UserError("--seeds: a seed is listed twice")
    runs = [experiments.resolve(name, profile, seed, overrides, smoke) for name in chosen for seed in seeds]
    return SweepPlan(runs)


def check_plan_inputs(plan: SweepPlan) -> None:
    """Every run's inputs checked (cache, data root, OOD files, FID weights) before the store is touched."""
    from runner.inputs import check_inputs

    checked = set()
    for cfg in plan.runs:
        inputs = (
            cfg.data.model_dump_json(),
            cfg.runtime.model_dump_json(),
            cfg.fid_features,
            cfg.eval.inception_weights,
        )
        if inputs not in checked:
            check_inputs(cfg)
            checked.add(inputs)


def finished_runs(store: Store, runs: list[RunConfig]) -> list[str]:
    """The run ids whose result.json exists, parses and carries the run's config hash."""
    done = []
    for cfg in runs:
        try:
            result = RunResult.from_json(store.read(RunStore(store, cfg.run_id).key(RESULT_FILE)), cfg.run_id)
        except (KeyError, ValueError):
            continue
        if result.config_hash == cfg.config_hash:
            done.append(cfg.run_id)
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


def run_in_process(plan: SweepPlan, store_uri: str, overall: tqdm, outcome: SweepOutcome) -> None:
    """One run after another in this process; the current run's bar sits below the overall one."""
    from runner.run import execute

    def log(message: str) -> None:
        tqdm.write(message, file=sys.stderr)

    from runner.cli import result_line

    for cfg in plan.remaining:
        overall.set_postfix_str(cfg.run_id)
        try:
            with nested():  # the run's bars go below the overall one
                result = execute(cfg, store_uri, log)
        except Diverged as err:
            outcome.failed[cfg.run_id] = (EXIT_DIVERGED, f"diverged: {err}")
            log(f"{cfg.run_id}: diverged: {err}")
        except UserError as err:
            outcome.failed[cfg.run_id] = (EXIT_USER_ERROR, f"error: {err}")
            log(f"{cfg.run_id}: error: {err}")
        else:
            outcome.done.append(cfg.run_id)
            log(result_line(result))
        overall.update()


def _child_command(cfg: RunConfig, store_uri: str, config: str, extra_sets: list[str]) -> list[str]:
    smoke = ["--smoke"] if cfg.smoke else []
    return [
        sys.executable,
        "-m",
        "runner",
        "local",
        "--exp",
        cfg.experiment,
        "--profile",
        cfg.profile,
        "--seed",
        str(cfg.seed),
        "--store",
        store_uri,
        "--config",
        config,
        "--set",
        "runtime.progress=false",
        *[arg for item in extra_sets for arg in ("--set", item)],
        *smoke,
    ]


def _summary_line(run_id: str, output: str, returncode: int) -> str:
    """The child's result line (`<run_id>: fid ...`), else its last line, else its exit code."""
    lines = output.strip().splitlines()
    result = [line for line in lines if line.startswith(f"{run_id}: fid ")]
    return (result or lines or [f"exit code {returncode}"])[-1].removeprefix(f"{run_id}: ")


def run_in_processes(
    plan: SweepPlan,
    store_uri: str,
    config: str,
    overrides: list[str],
    parallel: int,
    device: str,
    overall: tqdm,
    outcome: SweepOutcome,
) -> None:
    """At most `parallel` `local` processes at a time: one GPU each, or the CPU cores shared out."""
    queue = list(plan.remaining)
    threads = max(1, (os.cpu_count() or 1) // parallel)
    running: dict[int, tuple[subprocess.Popen, RunConfig, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="clel-sweep-") as logs:
        try:
            while queue or running:
                for slot in range(parallel):
                    if slot in running or not queue or outcome.preempted:
                        continue
                    cfg = queue.pop(0)
                    env, extra = dict(os.environ), list(overrides)
                    if device == "cuda":
                        env["CUDA_VISIBLE_DEVICES"] = str(slot)
                    else:
                        extra.append(f"runtime.threads={threads}")
                    output = open(Path(logs) / f"{cfg.run_id}.log", "w+")
                    command = _child_command(cfg, store_uri, config, extra)
                    process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)
                    running[slot] = (process, cfg, output)
                time.sleep(0.2)
                for slot, (process, cfg, output) in list(running.items()):
                    if process.poll() is None:
                        continue
                    output.seek(0)
                    last = _summary_line(cfg.run_id, output.read(), process.returncode)
                    output.close()
                    del running[slot]
                    overall.update()
                    tqdm.write(f"{cfg.run_id}: {last}", file=sys.stderr)
                    if process.returncode == 0:
                        outcome.done.append(cfg.run_id)
                    elif process.returncode == EXIT_PREEMPTED:
                        outcome.preempted = True
                    else:
                        outcome.failed[cfg.run_id] = (process.returncode, last)
        finally:
            for process, _, output in running.values():
                process.send_signal(signal.SIGTERM)  # each checkpoints at the end of its step
                process.wait()
                output.close()


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
) -> None:
    """Run the sweep, then summarize the store; a run that did not finish makes it raise (after the summary)."""
    from runner.config import parse_overrides

    experiments = ExperimentsFile(config)
    values = parse_overrides(overrides)
    extra = list(overrides)
    if iterations is not None:
        values["train.iterations"] = iterations
        extra.append(f"train.iterations={iterations}")
    if device is not None:
        values["runtime.device"] = device
        extra.append(f'runtime.device="{device}"')
    plan = plan_sweep(experiments, profile, names, seeds, values, smoke)
    check_plan_inputs(plan)
    store = open_store(store_uri)
    store.check()
    plan.finished = finished_runs(store, plan.runs)
    record_sweep(store, [cfg.run_id for cfg in plan.runs])
    log(f"sweep: {len(plan.runs)} runs ({len(plan.finished)} finished, {len(plan.remaining)} to run) in {store.uri}")
    outcome = SweepOutcome()
    overall = progress_bar(total=len(plan.runs), initial=len(plan.finished), desc="sweep", unit="run")
    with stop_on_signals(), overall:
        if parallel <= 1:
            run_in_process(plan, store_uri, overall, outcome)
        else:
            cuda = plan.runs[0].runtime.device == "cuda"
            run_in_processes(plan, store_uri, config, extra, parallel, "cuda" if cuda else "cpu", overall, outcome)
    if outcome.preempted:
        raise Preempted("a run was stopped (SIGTERM or Ctrl-C) and checkpointed; run the same command to continue")
    if plan.finished or outcome.done:
        from runner.report.summary import summarize

        summarize(store.uri, None, config)
    outcome.raise_failures()
