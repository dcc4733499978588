"""The executors that run planned runs on this machine (runner.launch.executor): `submit` here.

- InProcess: one run after another in this process (a run's bars below the overall one).
- Subprocesses: N `python -m runner local` processes at a time (RunSpec.to_argv), one GPU each or the CPU cores
  shared out.

Both are LocalRuns (runner.launch.local) for status, cancel and logs: a run's state is read from its store.
"""

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from runner.errors import EXIT_HELD, EXIT_INTERRUPTED, EXIT_PREEMPTED, exit_code_of
from runner.launch.local import LocalRuns
from runner.plan.planner import PlannedRun
from runner.result import result_line


@dataclass
class Outcome:
    """What happened to the runs that were started."""

    done: list[str] = field(default_factory=list)
    failed: dict[str, tuple[int, str]] = field(default_factory=dict)  # run id -> (exit code, last line)
    skipped: dict[str, str] = field(default_factory=dict)  # run id -> who holds it: another owner, not a failure
    preempted: bool = False


Report = Callable[[str, str], None]  # (run id, its result line or why it failed), after each run


def report_to_stderr(run_id: str, line: str) -> None:
    print(f"{run_id}: {line}", file=sys.stderr)


class InProcess(LocalRuns):
    """One run after another in this process (the registry's `local` backend: submit here, and LocalRuns' status,
    cancel and logs). A sweep passes its report and its overall bar; without them each run's line goes to stderr."""

    def __init__(self, store_uri: str, report: Report = report_to_stderr, bar: tqdm | None = None):
        super().__init__(store_uri)
        self.report, self.bar = report, bar if bar is not None else tqdm(disable=True)

    def submit(self, runs: list[PlannedRun]) -> Outcome:
        from runner.run.bars import nested
        from runner.run.execute import execute

        outcome = Outcome()
        for run in runs:
            self.bar.set_postfix_str(run.run_id)
            try:
                with nested():  # the run's bars go below the overall one
                    result = execute(run.config, self.store_uri, lambda line: tqdm.write(line, file=sys.stderr))
            except (Exception, KeyboardInterrupt) as err:
                mapped = exit_code_of(err)
                if mapped is None or mapped[0] in (EXIT_PREEMPTED, EXIT_INTERRUPTED):
                    raise  # a bug, or a stop: the sweep ends here
                if mapped[0] == EXIT_HELD:
                    outcome.skipped[run.run_id] = mapped[1]
                else:
                    outcome.failed[run.run_id] = mapped
                self.report(run.run_id, mapped[1])
            else:
                outcome.done.append(run.run_id)
                self.report(run.run_id, result_line(result).removeprefix(f"{run.run_id}: "))
            self.bar.update()
        return outcome


def _summary_line(run_id: str, output: str, returncode: int) -> str:
    """The child's result line (`<run_id>: fid ...`), else its last line, else its exit code."""
    lines = output.strip().splitlines()
    result = [line for line in lines if line.startswith(f"{run_id}: fid ")]
    return (result or lines or [f"exit code {returncode}"])[-1].removeprefix(f"{run_id}: ")


class Subprocesses(LocalRuns):
    """At most `parallel` `local` processes at a time: one GPU each (CUDA_VISIBLE_DEVICES), or the CPU cores
    shared out (runtime.threads). Ctrl-C or SIGTERM: each running child checkpoints at the end of its step."""

    def __init__(self, store_uri: str, parallel: int, cuda: bool, report: Report, bar: tqdm):
        super().__init__(store_uri)
        self.parallel, self.cuda, self.report, self.bar = parallel, cuda, report, bar

    def _start(self, run: PlannedRun, slot: int, logs: Path) -> tuple[subprocess.Popen, Any]:
        env, spec = dict(os.environ), run.spec.with_overrides(runtime__progress=False)
        if self.cuda:
            env["CUDA_VISIBLE_DEVICES"] = str(slot)
        else:
            spec = spec.with_overrides(runtime__threads=max(1, (os.cpu_count() or 1) // self.parallel))
        output = open(logs / f"{run.run_id}.log", "w+")
        command = [sys.executable, "-m", "runner", "local", *spec.to_argv(), "--store", self.store_uri]
        return subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env), output

    def submit(self, runs: list[PlannedRun]) -> Outcome:
        outcome, queue = Outcome(), list(runs)
        running: dict[int, tuple[subprocess.Popen, PlannedRun, Any]] = {}
        with tempfile.TemporaryDirectory(prefix="clel-sweep-") as logs:
            try:
                while queue or running:
                    for slot in range(self.parallel):
                        if slot not in running and queue and not outcome.preempted:
                            run = queue.pop(0)
                            process, output = self._start(run, slot, Path(logs))
                            running[slot] = (process, run, output)
                    time.sleep(0.2)
                    for slot, (process, run, output) in list(running.items()):
                        if process.poll() is None:
                            continue
                        del running[slot]
                        self._finished(run, process.returncode, output, outcome)
            finally:
                for process, _, output in running.values():
                    process.send_signal(signal.SIGTERM)  # each checkpoints at the end of its step
                    process.wait()
                    output.close()
        return outcome

    def _finished(self, run: PlannedRun, code: int, output: Any, outcome: Outcome) -> None:
        output.seek(0)
        line = _summary_line(run.run_id, output.read(), code)
        output.close()
        self.bar.update()
        if code == 0:
            outcome.done.append(run.run_id)
        elif code == EXIT_PREEMPTED:
            outcome.preempted = True
        elif code == EXIT_HELD:
            outcome.skipped[run.run_id] = line
        else:
            outcome.failed[run.run_id] = (code, line)
        self.report(run.run_id, line)
