"""`python -m runner render|submit|status|logs|cancel`: the ablation matrix as Kubernetes Jobs.

Everything reads experiments.toml [cluster] (see README.md, "Running on Kubernetes"); the kube context is the current
one (KUBECONFIG or ~/.kube/config), or the pod's service account inside a cluster.
"""

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from runner.config import DEFAULT_CONFIG_FILE, ExperimentsFile
from runner.errors import UserError

if TYPE_CHECKING:
    from kubernetes import client

    from runner.k8s import ClusterConfig, KubeApi
    from runner.store import RunStore

# runner.k8s (with the kubernetes client, about a second to import) is imported inside the functions
# that need it, so that `local`, `worker` and the other commands start without it.
FOLLOW_POLL_S = 2.0


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


def _prepare(config: str, exp: Any, image: Any = None) -> tuple["ClusterConfig", list["client.V1Job"]]:
    """(cluster table, Jobs) for the sweep, everything validated before any request is sent."""
    from runner import k8s

    experiments = ExperimentsFile(config)
    cluster = k8s.load_cluster(experiments, _text_flag("image", image))
    return cluster, k8s.render_jobs(experiments, cluster, _text_flag("exp", exp))


def _cluster(config: str) -> "ClusterConfig":
    from runner import k8s

    return k8s.load_cluster(ExperimentsFile(config))


def _api(cluster: "ClusterConfig") -> "KubeApi":
    from runner import k8s

    return k8s.KubeApi(k8s.connect(), cluster.namespace)


class ClusterCommands:
    """Kubernetes: one Job per experiment x seed, from experiments.toml [cluster]."""

    def render(self, exp: str | None = None, image: str | None = None, config: str = DEFAULT_CONFIG_FILE) -> None:
        """Print the sweep's Jobs (or one experiment's) as multi-document YAML; nothing is sent anywhere."""
        from runner import k8s

        _, jobs = _prepare(config, exp, image)
        print(k8s.to_yaml(jobs), end="")

    def submit(
        self,
        exp: str | None = None,
        dry_run: bool = False,
        replace: bool = False,
        image: str | None = None,
        config: str = DEFAULT_CONFIG_FILE,
    ) -> None:
        """Create the missing Jobs on the current kube context; existing ones are reported, never duplicated.

        A Job of the same run with another config hash is a conflict: reported (exit 2) unless --replace,
        which deletes it (and its pods) and creates the new one. --dry-run asks the API server to check
        every request without persisting anything.
        """
        from runner import k8s

        cluster, jobs = _prepare(config, exp, image)
        api = _api(cluster)
        outcomes = k8s.submit_jobs(api, jobs, bool(dry_run), bool(replace))
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

    def status(self, exp: str | None = None, config: str = DEFAULT_CONFIG_FILE) -> None:
        """A table of the sweep's Jobs: experiment, seed, phase, restarts, last checkpoint step, age."""
        from runner import k8s

        cluster = _cluster(config)
        api = _api(cluster)
        label_selector = k8s.selector(cluster, _text_flag("exp", exp))
        jobs = api.list_jobs(label_selector)
        if not jobs:
            print(f"no Jobs match {label_selector} in namespace {cluster.namespace}")
            return
        pods = api.list_pods(label_selector)
        steps, notes = checkpoint_steps(jobs, cluster)
        rows = []
        for job in sorted(jobs, key=_sort_key):
            mine = [pod for pod in pods if k8s.job_of(pod) == job.metadata.name]
            labels = job.metadata.labels or {}
            step = steps.get(job.metadata.name)
            rows.append(
                [
                    labels.get(f"{k8s.LABEL}experiment", "?"),
                    labels.get(f"{k8s.LABEL}seed", "?"),
                    job_phase(job, mine),
                    str(restarts(job, mine)),
                    "-" if step is None else str(step),
                    age(job.metadata.creation_timestamp) if job.metadata.creation_timestamp else "-",
                    job.metadata.name,
                ]
            )
        print(format_table(["EXPERIMENT", "SEED", "PHASE", "RESTARTS", "STEP", "AGE", "JOB"], rows))
        for note in notes:
            print(note, file=sys.stderr)

    def logs(
        self,
        exp: str = "",
        seed: int | None = None,
        follow: bool = False,
        config: str = DEFAULT_CONFIG_FILE,
    ) -> None:
        """The worker log of an experiment's Jobs (the newest pod of each); --follow streams one seed's log."""
        from runner import k8s

        name = _text_flag("exp", exp)
        if not name:
            raise UserError("--exp NAME is required (see `python -m runner status`)")
        cluster = _cluster(config)
        api = _api(cluster)
        label_selector = k8s.selector(cluster, name, _seed_flag(seed))
        jobs = sorted(api.list_jobs(label_selector), key=_sort_key)
        if not jobs:
            raise UserError(f"no Jobs match {label_selector} in namespace {cluster.namespace}")
        if follow:
            if len(jobs) > 1:
                raise UserError(f"--follow follows one Job: add --seed ({len(jobs)} Jobs match {label_selector})")
            follow_job(api, jobs[0], label_selector)
            return
        pods = api.list_pods(label_selector)
        for job in jobs:
            pod = k8s.newest_pod([p for p in pods if k8s.job_of(p) == job.metadata.name])
            if len(jobs) > 1:
                print(f"==> {job.metadata.name} <==")
            if pod is None:
                print(f"{job.metadata.name}: no pod yet")
                continue
            problem = api.stream_log(pod.metadata.name, _write)
            if problem:
                print(f"{pod.metadata.name}: {problem}")

    def cancel(self, exp: str | None = None, config: str = DEFAULT_CONFIG_FILE) -> None:
        """Delete the sweep's Jobs (or one experiment's) and their pods; checkpoints stay in the store."""
        from runner import k8s

        cluster = _cluster(config)
        api = _api(cluster)
        label_selector = k8s.selector(cluster, _text_flag("exp", exp))
        jobs = api.list_jobs(label_selector)
        deleted = [job.metadata.name for job in sorted(jobs, key=_sort_key) if api.delete_job(job.metadata.name)]
        for name in deleted:
            print(f"deleted {name}")
        print(f"{len(deleted)} Job(s) deleted ({label_selector}, namespace {cluster.namespace})")


# --- logs ------------------------------------------------------------------------------------------


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _started(pod: "client.V1Pod") -> bool:
    return pod.status is not None and pod.status.phase in ("Running", "Succeeded", "Failed")


def follow_job(api: "KubeApi", job: "client.V1Job", label_selector: str, poll_s: float | None = None) -> None:
    """Stream the Job's log until it finishes, moving on to each replacement pod (after a preemption)."""
    from runner import k8s

    name = job.metadata.name
    streamed: set[str] = set()
    while True:
        pods = [pod for pod in api.list_pods(label_selector) if k8s.job_of(pod) == name]
        pod = k8s.newest_pod(pods)
        if pod is not None and pod.metadata.name not in streamed and _started(pod):
            if streamed:
                print(f"==> {name}: replacement pod {pod.metadata.name} <==", flush=True)
            streamed.add(pod.metadata.name)
            problem = api.stream_log(pod.metadata.name, _write, follow=True)
            if problem:
                print(f"{pod.metadata.name}: {problem}", flush=True)
            continue
        current = api.read_job(name)
        if current is None or k8s.job_finished(current):
            return
        time.sleep(FOLLOW_POLL_S if poll_s is None else poll_s)


# --- status ----------------------------------------------------------------------------------------


def _sort_key(job: "client.V1Job") -> tuple[str, int, str]:
    labels = job.metadata.labels or {}
    seed = labels.get("clel/seed", "")
    return labels.get("clel/experiment", ""), int(seed) if seed.isdigit() else -1, job.metadata.name


@contextmanager
def store_environment(cluster: "ClusterConfig") -> Iterator[None]:
    """The cluster's S3 endpoint, addressing and region for this process, unless the environment sets them."""
    wanted = {
        "AWS_ENDPOINT_URL_S3": cluster.s3_endpoint,
        "CLEL_S3_ADDRESSING": "" if cluster.s3_addressing == "auto" else cluster.s3_addressing,
        "AWS_DEFAULT_REGION": cluster.s3_region,
    }
    added = [key for key, value in wanted.items() if value and key not in os.environ]
    os.environ.update({key: wanted[key] for key in added})
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def checkpoint_steps(jobs: list["client.V1Job"], cluster: "ClusterConfig") -> tuple[dict[str, int | None], list[str]]:
    """Each Job's last checkpoint step from its store, and notes (store unreachable, config mismatch)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from runner import k8s
    from runner.store import RunStore, open_store

    steps: dict[str, int | None] = {}
    notes: list[str] = []
    by_store: dict[str, list[client.V1Job]] = {}
    for job in jobs:
        by_store.setdefault((job.metadata.annotations or {}).get(k8s.STORE_KEY, cluster.store), []).append(job)
    with store_environment(cluster):
        for uri, members in by_store.items():
            try:
                store = open_store(uri)
                store.check()
                for job in members:
                    annotations = job.metadata.annotations or {}
                    run = RunStore(store, annotations.get(k8s.RUN_ID_KEY, ""))
                    steps[job.metadata.name] = run.latest_step()
                    notes += _config_mismatch(run, annotations.get(k8s.HASH_KEY))
            except (UserError, OSError, BotoCoreError, ClientError) as err:
                notes.append(f"note: checkpoint steps unknown: {err} (set AWS_ENDPOINT_URL_S3 to a reachable endpoint)")
    return steps, notes


def _config_mismatch(run: "RunStore", expected: str | None) -> list[str]:
    try:
        stored = json.loads(run.store.read(run.key("config.json"))).get("config_hash")
    except (KeyError, ValueError):
        return []
    if expected and stored != expected:
        return [
            f"warning: {run.run_id} in the store has config {stored}, its Job was rendered for {expected} "
            "(the image's experiments.toml differs from yours? `make image` and submit with that image)"
        ]
    return []


def _waiting_reason(pod: "client.V1Pod") -> str | None:
    for status in (pod.status and pod.status.container_statuses) or []:
        if status.state and status.state.waiting and status.state.waiting.reason:
            return status.state.waiting.reason
    return None


def job_phase(job: "client.V1Job", pods: list["client.V1Pod"]) -> str:
    """Succeeded, Failed (reason), Suspended, or the newest pod's phase (with its waiting reason)."""
    from runner import k8s

    if k8s.job_condition(job, "Complete"):
        return "Succeeded"
    failed = k8s.job_condition(job, "Failed")
    if failed:
        return f"Failed ({failed.reason})" if failed.reason else "Failed"
    if k8s.job_condition(job, "Suspended"):
        return "Suspended"
    pod = k8s.newest_pod(pods)
    if pod is None or pod.status is None or not pod.status.phase:
        return "Pending"
    reason = _waiting_reason(pod)
    return f"{pod.status.phase} ({reason})" if reason else pod.status.phase


def restarts(job: "client.V1Job", pods: list["client.V1Pod"]) -> int:
    """How often the run was started again: replacement pods, preempted ones included."""
    failed = (job.status and job.status.failed) or 0
    return max(len(pods) - 1, failed, 0)


def age(created: datetime, now: float | None = None) -> str:
    """Compact age of a timestamp: 45s, 12m, 3h5m, 2d4h."""
    seconds = max(int((time.time() if now is None else now) - created.timestamp()), 0)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600}h"


def format_table(header: list[str], rows: list[list[str]]) -> str:
    """Left-aligned columns separated by two spaces."""
    table = [header, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in table)
