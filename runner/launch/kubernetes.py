"""Kubernetes Jobs as an executor (runner.launch.executor): submit, status, cancel and logs.

`submit` renders one Job per planned run (its worker arguments are the run's RunSpec) and creates the missing
ones; `status`, `cancel` and `logs` select the sweep's Jobs by their labels (one experiment's, one seed's), which
also finds Jobs of runs the current config no longer plans: `status` shows each Job's phase with its run's
progress read from the store, `cancel` deletes Jobs (their checkpoints stay in the store), `logs` prints the
newest pod's log of each Job, or follows one Job's across replacement pods.
"""

from typing import TYPE_CHECKING, Self

from runner.cluster import submit as submitting
from runner.cluster.config import ClusterConfig, load_cluster
from runner.cluster.job_progress import read_progress
from runner.cluster.logs import follow_job, print_logs
from runner.cluster.names import selector
from runner.cluster.render import render_runs
from runner.cluster.status import sort_key, status_table
from runner.config import ExperimentsFile
from runner.errors import UserError
from runner.launch.executor import Cancelled, Selection, StatusTable
from runner.plan.planner import PlannedRun

if TYPE_CHECKING:
    from runner.cluster.api import KubeApi


class KubernetesJobs:
    """The sweep's runs as Jobs in the cluster's namespace."""

    def __init__(self, api: "KubeApi", cluster: ClusterConfig, dry_run: bool = False, replace: bool = False):
        self.api, self.cluster, self.dry_run, self.replace = api, cluster, dry_run, replace

    @classmethod
    def for_command(cls, config: str, store: str) -> Self:
        """The current kube context's API (or the pod's service account) and the config's [cluster] table."""
        from runner.cluster import api

        cluster = load_cluster(ExperimentsFile(config))
        return cls(api.KubeApi(api.connect(), cluster.namespace), cluster)

    def submit(self, runs: list[PlannedRun]) -> list[submitting.Outcome]:
        """Create the runs' missing Jobs; existing ones are reported, conflicting ones replaced only if asked."""
        return submitting.submit_jobs(self.api, render_runs(self.cluster, runs), self.dry_run, self.replace)

    def _selector(self, selection: Selection) -> str:
        return selector(self.cluster.sweep, selection.experiment, selection.seed)

    def status(self, selection: Selection) -> StatusTable:
        label_selector = self._selector(selection)
        jobs = self.api.list_jobs(label_selector)
        if not jobs:
            return StatusTable(f"no Jobs match {label_selector} in namespace {self.cluster.namespace}")
        pods = self.api.list_pods(label_selector)
        progress, notes = read_progress(jobs, self.cluster)
        return StatusTable(status_table(jobs, pods, progress), progress, notes)

    def cancel(self, selection: Selection) -> Cancelled:
        """Delete the selected Jobs and their pods; checkpoints stay in the store."""
        label_selector = self._selector(selection)
        jobs = sorted(self.api.list_jobs(label_selector), key=sort_key)
        deleted = [job.metadata.name for job in jobs if self.api.delete_job(job.metadata.name)]
        summary = f"{len(deleted)} Job(s) deleted ({label_selector}, namespace {self.cluster.namespace})"
        return Cancelled([f"deleted {name}" for name in deleted], summary)

    def logs(self, selection: Selection, follow: bool) -> None:
        label_selector = self._selector(selection)
        jobs = sorted(self.api.list_jobs(label_selector), key=sort_key)
        if not jobs:
            raise UserError(f"no Jobs match {label_selector} in namespace {self.cluster.namespace}")
        if follow:
            if len(jobs) > 1:
                raise UserError(f"--follow follows one Job: add --seed ({len(jobs)} Jobs match {label_selector})")
            follow_job(self.api, jobs[0], label_selector)
            return
        print_logs(self.api, jobs, label_selector)
