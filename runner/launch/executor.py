"""The one road to where runs execute: the typed `Executor` (submit, status, cancel, logs) and its registry.

Every command that acts on runs goes through an executor, as submitit's Executor is the one way to a backend:
`sweep` submits to the in-process or the subprocess executor (runner.launch.processes), `submit` to the Kubernetes
one (runner.launch.kubernetes); `status`, `cancel` and `logs` ask `executor_for(backend, ...)`: the runs of a
store on this machine (`--local`, runner.launch.local) or the cluster's Jobs. A new backend (a Slurm or a Ray
executor) is one class with these four methods and a `for_command` constructor, and one line in BACKENDS.
"""

from dataclasses import dataclass, field
from importlib import import_module
from typing import Protocol, Self, TypeVar

from runner.plan.planner import PlannedRun
from runner.run.status import Progress

Submitted = TypeVar("Submitted", covariant=True)  # what a backend's submit returns: its record of each run


@dataclass(frozen=True)
class Selection:
    """The runs a command acts on: every run (of the store, or of the sweep's Jobs), one experiment's, one seed's."""

    experiment: str | None = None
    seed: int | None = None

    def matches(self, experiment: str, seed: int) -> bool:
        return (self.experiment is None or experiment == self.experiment) and (self.seed is None or seed == self.seed)


@dataclass(frozen=True)
class StatusTable:
    """What `status` prints: the table (or why there is none), each run's progress by run id or Job (for the
    AUROC lines under it), and notes for stderr."""

    text: str
    progress: dict[str, Progress] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Cancelled:
    """What `cancel` did: one line per run stopped (or Job deleted), then a summary line."""

    lines: list[str]
    summary: str


class Executor(Protocol[Submitted]):
    """Runs the planner's runs somewhere, and answers for them there."""

    @classmethod
    def for_command(cls, config: str, store: str) -> Self:
        """The executor a command line names: the experiments file and the store (`--config`, `--store`)."""
        ...

    def submit(self, runs: list[PlannedRun]) -> Submitted: ...

    def status(self, selection: Selection) -> StatusTable: ...

    def cancel(self, selection: Selection) -> Cancelled: ...

    def logs(self, selection: Selection, follow: bool) -> None:
        """Print the selected runs' logs to stdout; with `follow`, one run's as it grows, until it ends."""
        ...


# backend -> "module:class", imported on first use (the Kubernetes client takes about a second to import)
BACKENDS = {
    "local": "runner.launch.processes:InProcess",
    "kubernetes": "runner.launch.kubernetes:KubernetesJobs",
}


def executor_class(backend: str) -> type[Executor]:
    module, _, name = BACKENDS[backend].partition(":")
    return getattr(import_module(module), name)


def executor_for(backend: str, config: str, store: str) -> Executor:
    """The registered backend's executor for this command line."""
    return executor_class(backend).for_command(config, store)
