"""`python -m runner render|submit|status|logs|cancel`: the ablation matrix as Kubernetes Jobs.

Everything reads experiments.toml [cluster] (see docs/KUBERNETES.md); the kube context is the current
one (KUBECONFIG or ~/.kube/config), or the pod's service account inside a cluster. runner.cli.commands.Commands inherits
these commands, so runner.cli.argv checks their flags before any of them runs.
"""

import sys
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from runner.cluster import status
from runner.cluster.config import ClusterConfig, load_cluster, plan_cluster_runs
from runner.config import DEFAULT_CONFIG_FILE, ExperimentsFile
from runner.errors import UserError
from runner.launch.executor import Selection, executor_for

if TYPE_CHECKING:
    from runner.cluster.api import KubeApi
    from runner.plan.planner import PlannedRun


def _kube() -> tuple[ModuleType, ModuleType]:
    """runner.cluster.render and runner.cluster.api, imported on first use: the kubernetes client they import
    takes about a second, which `local`, `worker` and the other commands do without."""
    from runner.cluster import api, render

    return render, api


def _text_flag(name: str, value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise UserError(f"--{name} needs a value")
    return str(value)


def _seed_flag(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UserError(f"--seed {value!r}: expected an integer >= 0")
    return value


def _plan(
    config: str, exp: Any, image: Any = None, profile: str | None = None, seed: int | None = None
) -> tuple[ClusterConfig, list["PlannedRun"]]:
    """(cluster table, the sweep's planned runs), everything validated before any request is sent."""
    render, _ = _kube()
    experiments = ExperimentsFile(config)
    cluster = load_cluster(experiments, _text_flag("image", image), _text_flag("profile", profile), _seed_flag(seed))
    return cluster, plan_cluster_runs(experiments, cluster, _text_flag("exp", exp))


def _checked_exp(config: str, exp: Any) -> str | None:
    """--exp: an experiment of the config, or None; UserError otherwise (nothing read from a store yet)."""
    experiments = ExperimentsFile(config)
    name = _text_flag("exp", exp)
    if name is not None and name not in experiments.experiments:
        raise UserError(f"--exp {name}: unknown experiment (known: {', '.join(experiments.experiments)})")
    return name


def _backend(local: bool) -> str:
    """The executor of `status`, `cancel` and `logs`: the runs of a store here, or the cluster's Jobs."""
    return "local" if local else "kubernetes"


def _api(cluster: ClusterConfig) -> "KubeApi":
    _, api = _kube()
    return api.KubeApi(api.connect(), cluster.namespace)


class ClusterCommands:
    """Kubernetes: one Job per experiment x seed, from experiments.toml [cluster]."""

    def render(
        self,
        exp: str | None = None,
        profile: str | None = None,
        seed: Annotated[int, Field(ge=0)] | None = None,
        image: str | None = None,
        config: str = DEFAULT_CONFIG_FILE,
    ) -> None:
        """Print the sweep's Jobs as multi-document YAML: the offline view of `submit`; nothing is sent anywhere.

        Flags:
          exp: only this experiment's Jobs
          profile: the profile of the Jobs (default: [cluster] profile)
          seed: only this seed's Jobs (default: [cluster] seeds, else [sweep] seeds)
        """
        cluster, runs = _plan(config, exp, image, profile, seed)
        render, _ = _kube()
        print(render.to_yaml(render.render_runs(cluster, runs)), end="")

    def submit(
        self,
        exp: str | None = None,
        dry_run: bool = False,
        replace: bool = False,
        image: str | None = None,
        config: str = DEFAULT_CONFIG_FILE,
    ) -> None:
        """Create the missing Jobs on the current kube context; existing ones are reported, never duplicated.

        A Job of the same run with another config hash is a conflict: reported (exit 2) unless --replace.

        Flags:
          exp: only this experiment's Jobs
          dry_run: ask the API server to check every Job without creating any (needs the cluster; `render` is
            the offline view)
          replace: delete a conflicting Job (and its pods) and create the new one
        """
        cluster, runs = _plan(config, exp, image)
        _kube()[0].render_runs(cluster, runs)  # every Job renders (unique names) before a request is sent
        from runner.launch.kubernetes import KubernetesJobs

        try:
            api = _api(cluster)
            outcomes = KubernetesJobs(api, cluster, bool(dry_run), bool(replace)).submit(runs)
        except UserError as err:
            if not dry_run:
                raise
            why = "submit --dry-run asks the cluster's API server to check every Job"
            raise UserError(f"{err} ({why}; `python -m runner render` shows the Jobs offline)") from None
        prefix = "would " if dry_run else ""
        verbs = {"created": "create", "replaced": "replace"}
        for outcome in outcomes:
            action = f"{prefix}{verbs[outcome.action]}" if dry_run and outcome.action in verbs else outcome.action
            detail = f"  ({outcome.detail})" if outcome.detail else ""
            print(f"{action:<14} {outcome.name}  {outcome.run_id}{detail}")
        counts = {
            kind: sum(o.action == kind for o in outcomes) for kind in ("created", "replaced", "exists", "conflict")
        }
        summary = ", ".join(f"{n} {kind}" for kind, n in counts.items() if n)
        print(f"{prefix}submit to namespace {cluster.namespace} at {api.host}: {summary or 'nothing to do'}")
        if counts["conflict"]:
            raise UserError(
                f"{counts['conflict']} run(s) already have a Job with another config (listed above); "
                "`submit --replace` deletes and recreates them"
            )

    def status(
        self,
        exp: str | None = None,
        watch: bool = False,
        interval: Annotated[float, Field(gt=0, le=86400)] = 10.0,
        local: bool = False,
        store: str = "runs",
        config: str = DEFAULT_CONFIG_FILE,
    ) -> None:
        """A table of the sweep's Jobs (or, with --local, of a store's runs here) with their progress.

        Per Job: phase (queued in Kueue or running), restarts, and the run's step/iterations, last checkpoint,
        it/s, ETA, last loss, FID once finished (AUROCs below). With --local: each run the store's sweeps asked
        for or that has a directory, its phase (running, with its pid; stopped; finished; pending) and progress.

        Flags:
          exp: only this experiment's Jobs (or runs)
          watch: refresh the table every --interval seconds until Ctrl-C
          interval: seconds between refreshes with --watch
          local: the runs of --store on this machine (a sweep, `local` runs), not the cluster's Jobs
          store: with --local, the store to read (default: runs)
        """
        selection = Selection(_checked_exp(config, exp))
        executor = executor_for(_backend(local), config, store)

        def show() -> None:
            found = executor.status(selection)
            print(found.text)
            for line in status.auroc_lines(found.progress):
                print(line)
            for note in found.notes:
                print(note, file=sys.stderr)

        if watch:
            status.watch(show, interval)
        else:
            show()

    def logs(
        self,
        exp: str = "",
        seed: int | None = None,
        follow: bool = False,
        local: bool = False,
        store: str = "runs",
        config: str = DEFAULT_CONFIG_FILE,
    ) -> None:
        """The worker log of an experiment's Jobs (the newest pod of each), or one seed's log as it grows. With
        --local: the runs' metrics.jsonl in --store.

        Flags:
          exp: the experiment whose Jobs' (or runs') logs to print
          seed: only this seed's Job (or run)
          follow: stream the log of one Job (with --seed when the experiment has several) until it ends; with
            --local, one run's metrics.jsonl until its result is written or no process holds it
          local: the runs of --store on this machine, not the cluster's Jobs
          store: with --local, the store to read (default: runs)
        """
        if not _text_flag("exp", exp):
            raise UserError("--exp NAME is required (see `python -m runner status`)")
        selection = Selection(_checked_exp(config, exp), _seed_flag(seed))
        executor_for(_backend(local), config, store).logs(selection, bool(follow))

    def cancel(
        self, exp: str | None = None, local: bool = False, store: str = "runs", config: str = DEFAULT_CONFIG_FILE
    ) -> None:
        """Delete the sweep's Jobs (or one experiment's) and their pods; checkpoints stay in the store. With
        --local: stop the processes running the store's runs here (each checkpoints at the end of its step).

        Flags:
          exp: only this experiment's Jobs (or runs)
          local: the runs of --store on this machine, not the cluster's Jobs
          store: with --local, the store whose running runs to stop (default: runs)
        """
        selection = Selection(_checked_exp(config, exp))
        cancelled = executor_for(_backend(local), config, store).cancel(selection)
        for line in cancelled.lines:
            print(line)
        print(cancelled.summary)
