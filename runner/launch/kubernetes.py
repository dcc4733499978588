"""Kubernetes Jobs as an executor (runner.launch.executors): `submit`, `status` and `cancel` over the planner's runs.

`submit` renders one Job per planned run (its worker arguments are the run's RunSpec) and creates the missing
ones; `status` reads each run's Job, its pods' phase and the run's progress from the store; `cancel` deletes the
runs' Jobs (their checkpoints stay in the store). The commands select a whole sweep by its label instead
(`status`, `cancel`), which also finds Jobs of runs the current config no longer plans.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING

from runner.cluster import submit as submitting
from runner.cluster.config import ClusterConfig
from runner.cluster.job_progress import read_progress
from runner.cluster.names import MANAGED_BY, job_of
from runner.cluster.render import render_job, render_runs
from runner.cluster.status import job_phase
from runner.plan.planner import PlannedRun
from runner.run.status import Progress

if TYPE_CHECKING:
    from runner.cluster.api import KubeApi


@dataclass(frozen=True)
class JobState:
    """One run's Job: its phase (or `no Job`), the Job's name, and the run's progress in the store."""

    run_id: str
    job: str
    phase: str
    progress: Progress | None


class KubernetesJobs:
    """The planner's runs as Jobs in the cluster's namespace."""

    def __init__(self, api: "KubeApi", cluster: ClusterConfig):
        self.api, self.cluster = api, cluster

    def submit(self, runs: list[PlannedRun], dry_run: bool = False, replace: bool = False) -> list[submitting.Outcome]:
        """Create the runs' missing Jobs; existing ones are reported, conflicting ones replaced only if asked."""
        return submitting.submit_jobs(self.api, render_runs(self.cluster, runs), dry_run, replace)

    def status(self, runs: list[PlannedRun]) -> list[JobState]:
        """Each run's Job phase and progress (`no Job` for a run that has none)."""
        names = {render_job(self.cluster, run).metadata.name: run.run_id for run in runs}
        selector = f"{MANAGED_BY[0]}={MANAGED_BY[1]}"
        jobs = [job for job in self.api.list_jobs(selector) if job.metadata.name in names]
        pods = self.api.list_pods(selector)
        progress, _ = read_progress(jobs, self.cluster)
        found = {
            job.metadata.name: job_phase(job, [pod for pod in pods if job_of(pod) == job.metadata.name]) for job in jobs
        }
        return [JobState(run_id, name, found.get(name, "no Job"), progress.get(name)) for name, run_id in names.items()]

    def cancel(self, runs: list[PlannedRun]) -> list[str]:
        """Delete the runs' Jobs and their pods; the names deleted."""
        names = [render_job(self.cluster, run).metadata.name for run in runs]
        return [name for name in names if self.api.delete_job(name)]
