"""Job rendering: one batch/v1 Job per experiment x seed, built from the official client's models.

`render_jobs` resolves the sweep's runs and renders their Jobs (names checked unique); `to_yaml` prints them.
Nothing here talks to a cluster.
"""

import json
import re
from dataclasses import replace
from typing import Any

import yaml
from kubernetes import client

from runner.cluster.config import LABEL_VALUE, ClusterConfig, plan_cluster_runs
from runner.cluster.names import (
    APP_NAME,
    CONTAINER,
    HASH_KEY,
    KUEUE_QUEUE_LABEL,
    LABEL,
    MANAGED_BY,
    POINT_KEY,
    RUN_ID_KEY,
    STORE_KEY,
)
from runner.config import DEFAULT_CONFIG_FILE, ExperimentsFile, RunConfig
from runner.errors import EXIT_DIVERGED, EXIT_HELD, EXIT_USER_ERROR, UserError
from runner.layout import point_tag
from runner.plan.planner import PlannedRun
from runner.plan.spec import RunSpec

NAME_PREFIX = "clel-"
MAX_NAME = 63
WORKDIR_HOME = "/home/runner"  # HOME, an emptyDir: the Inception weights and reference statistics are cached below it
DATA_DIR = "/data"
TMP_DIR = "/tmp"
CREDENTIALS_DIR = "/var/run/secrets/clel/s3"
CREDENTIALS_KEY = "credentials"  # the Secret's key: an AWS shared-credentials file ([default] aws_access_key_id = ...)
# checkov.io/skip<N> annotations: checkov reads "<check id>=<reason>" (the reason must not contain '=').
CHECKOV_SKIP = "checkov.io/skip"
DIGEST_SKIP = (
    "CKV_K8S_43",
    "the image is pinned by a version tag in experiments.toml [cluster] image; give image@sha256:... to pin a digest",
)


def _slug(text: str) -> str:
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", text.lower())).strip("-")


def job_name(cfg: RunConfig) -> str:
    """clel-<experiment>-<profile>-s<seed>-<config hash>, the stem shortened to stay within 63 characters."""
    suffix = f"-s{cfg.seed}-{cfg.config_hash}"
    room = MAX_NAME - len(NAME_PREFIX) - len(suffix)
    if room < 1:
        raise UserError(f"seed {cfg.seed} is too long for a Job name")
    stem = _slug(f"{cfg.experiment}-{cfg.profile}")[:room].strip("-") or "run"
    return f"{NAME_PREFIX}{stem}{suffix}"


def run_labels(cluster: ClusterConfig, cfg: RunConfig) -> dict[str, str]:
    """Labels of a Job and its pods: who manages it, sweep, profile, experiment, seed, config hash."""
    if len(cfg.experiment) > 63 or not LABEL_VALUE.fullmatch(cfg.experiment):
        raise UserError(f"experiment {cfg.experiment!r}: not usable as a Kubernetes label value (a-z, 0-9, -_.)")
    return {
        APP_NAME[0]: APP_NAME[1],
        MANAGED_BY[0]: MANAGED_BY[1],
        f"{LABEL}sweep": cluster.sweep,
        f"{LABEL}profile": cfg.profile,
        f"{LABEL}experiment": cfg.experiment,
        f"{LABEL}seed": str(cfg.seed),
        HASH_KEY: cfg.config_hash,
    } | ({POINT_KEY: point_tag(cfg.point)} if cfg.point else {})


def worker_args(cluster: ClusterConfig, spec: RunSpec) -> list[str]:
    """`python -m runner` arguments that make the worker resolve exactly this run (with the image's
    experiments.toml, whose config hash the worker checks: CLEL_CONFIG_HASH)."""
    in_image = replace(spec, config_file=DEFAULT_CONFIG_FILE)
    args = ["worker", *in_image.to_argv(), "--store", cluster.store, "--data-root", DATA_DIR]
    return args + (["--download"] if cluster.download_data else [])


def pod_failure_policy() -> client.V1PodFailurePolicy:
    """Preemption is ignored (not counted against backoffLimit), and so is a run held by another owner (exit 4: a
    killed pod's S3 lease holds the run until it expires, at most CLEL_LEASE_SECONDS, and the next pod takes it over);
    config errors and divergence fail the Job."""
    return client.V1PodFailurePolicy(
        rules=[
            client.V1PodFailurePolicyRule(
                action="Ignore",
                on_pod_conditions=[
                    client.V1PodFailurePolicyOnPodConditionsPattern(type="DisruptionTarget", status="True")
                ],
            ),
            client.V1PodFailurePolicyRule(
                action="Ignore",
                on_exit_codes=client.V1PodFailurePolicyOnExitCodesRequirement(
                    container_name=CONTAINER, operator="In", values=[EXIT_HELD]
                ),
            ),
            client.V1PodFailurePolicyRule(
                action="FailJob",
                on_exit_codes=client.V1PodFailurePolicyOnExitCodesRequirement(
                    container_name=CONTAINER, operator="In", values=sorted([EXIT_USER_ERROR, EXIT_DIVERGED])
                ),
            ),
        ]
    )


def _env(cluster: ClusterConfig, cfg: RunConfig) -> list[client.V1EnvVar]:
    env = [
        client.V1EnvVar(name="HOME", value=WORKDIR_HOME),
        client.V1EnvVar(name="PYTHONUNBUFFERED", value="1"),
        client.V1EnvVar(name="CLEL_CONFIG_HASH", value=cfg.config_hash),
        client.V1EnvVar(name="AWS_DEFAULT_REGION", value=cluster.s3_region),
    ]
    if cluster.s3_endpoint:
        env.append(client.V1EnvVar(name="AWS_ENDPOINT_URL_S3", value=cluster.s3_endpoint))
    if cluster.s3_addressing != "auto":
        env.append(client.V1EnvVar(name="CLEL_S3_ADDRESSING", value=cluster.s3_addressing))
    if cluster.credentials_secret:
        path = f"{CREDENTIALS_DIR}/{CREDENTIALS_KEY}"
        env.append(client.V1EnvVar(name="AWS_SHARED_CREDENTIALS_FILE", value=path))
    return env


def _resources(cluster: ClusterConfig) -> client.V1ResourceRequirements:
    requests = {"cpu": cluster.cpu, "memory": cluster.memory}
    limits = {"cpu": cluster.cpu, "memory": cluster.memory}
    if cluster.gpus:
        requests[cluster.gpu_resource] = limits[cluster.gpu_resource] = str(cluster.gpus)
    return client.V1ResourceRequirements(requests=requests, limits=limits)


def _container(cluster: ClusterConfig, run: PlannedRun) -> client.V1Container:
    return client.V1Container(
        name=CONTAINER,
        image=cluster.image,
        image_pull_policy="Always",
        command=["python", "-m", "runner"],
        args=worker_args(cluster, run.spec),
        env=_env(cluster, run.config),
        resources=_resources(cluster),
        volume_mounts=_volume_mounts(cluster),
        security_context=client.V1SecurityContext(
            allow_privilege_escalation=False,
            capabilities=client.V1Capabilities(drop=["ALL"]),
            privileged=False,
            read_only_root_filesystem=True,
            run_as_non_root=True,
        ),
    )


def _volume_mounts(cluster: ClusterConfig) -> list[client.V1VolumeMount]:
    """The root filesystem is read-only: /dev/shm, /data, /tmp and HOME are the writable places."""
    mounts = [
        client.V1VolumeMount(name="dshm", mount_path="/dev/shm"),
        client.V1VolumeMount(name="data", mount_path=DATA_DIR),
        client.V1VolumeMount(name="tmp", mount_path=TMP_DIR),
        client.V1VolumeMount(name="home", mount_path=WORKDIR_HOME),
    ]
    if cluster.credentials_secret:
        mounts.append(client.V1VolumeMount(name="s3-credentials", mount_path=CREDENTIALS_DIR, read_only=True))
    return mounts


def _volumes(cluster: ClusterConfig) -> list[client.V1Volume]:
    volumes = [
        client.V1Volume(
            name="dshm", empty_dir=client.V1EmptyDirVolumeSource(medium="Memory", size_limit=cluster.shm_size)
        ),
        _data_volume(cluster),
        client.V1Volume(name="tmp", empty_dir=client.V1EmptyDirVolumeSource()),
        client.V1Volume(name="home", empty_dir=client.V1EmptyDirVolumeSource()),
    ]
    if cluster.credentials_secret:
        secret = client.V1SecretVolumeSource(
            secret_name=cluster.credentials_secret,
            items=[client.V1KeyToPath(key=CREDENTIALS_KEY, path=CREDENTIALS_KEY)],
            default_mode=0o440,  # owner root, group fsGroup (the worker's group): readable by the worker only
        )
        volumes.append(client.V1Volume(name="s3-credentials", secret=secret))
    return volumes


def _data_volume(cluster: ClusterConfig) -> client.V1Volume:
    if cluster.data_volume_claim:
        claim = client.V1PersistentVolumeClaimVolumeSource(claim_name=cluster.data_volume_claim)
        return client.V1Volume(name="data", persistent_volume_claim=claim)
    return client.V1Volume(name="data", empty_dir=client.V1EmptyDirVolumeSource())


def _pod_spec(cluster: ClusterConfig, run: PlannedRun) -> client.V1PodSpec:
    tolerations = [
        client.V1Toleration(
            key=t.key or None,
            operator=t.operator,
            value=t.value or None,
            effect=t.effect or None,
            toleration_seconds=t.toleration_seconds,
        )
        for t in cluster.tolerations
    ]
    return client.V1PodSpec(
        restart_policy="Never",
        service_account_name=cluster.service_account or None,
        automount_service_account_token=False,
        termination_grace_period_seconds=cluster.termination_grace_period_seconds,
        priority_class_name=cluster.priority_class or None,
        node_selector=dict(cluster.node_selector) or None,
        tolerations=tolerations or None,
        image_pull_secrets=[client.V1LocalObjectReference(name=n) for n in cluster.image_pull_secrets] or None,
        security_context=client.V1PodSecurityContext(
            run_as_non_root=True,
            run_as_user=cluster.run_as_user,
            run_as_group=cluster.run_as_user,
            fs_group=cluster.run_as_user,
            seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault"),
        ),
        containers=[_container(cluster, run)],
        volumes=_volumes(cluster),
    )


def render_job(cluster: ClusterConfig, run: PlannedRun) -> client.V1Job:
    """The batch/v1 Job of one run (experiment x grid point x seed)."""
    cfg = run.config
    labels = run_labels(cluster, cfg)
    annotations = {HASH_KEY: cfg.config_hash, RUN_ID_KEY: cfg.run_id, STORE_KEY: cluster.store}
    if cfg.point:
        annotations[POINT_KEY] = json.dumps(cfg.point, sort_keys=True)
    job_labels = labels | ({KUEUE_QUEUE_LABEL: cluster.queue_name} if cluster.queue_name else {})
    return client.V1Job(
        api_version="batch/v1",
        kind="Job",
        metadata=client.V1ObjectMeta(
            name=job_name(cfg),
            namespace=cluster.namespace,
            labels=job_labels,
            annotations=annotations | checkov_skips(cluster),
        ),
        spec=client.V1JobSpec(
            suspend=True if cluster.queue_name else None,  # Kueue admits it (unsuspends) when its quota allows
            backoff_limit=cluster.backoff_limit,
            active_deadline_seconds=cluster.active_deadline_seconds,
            ttl_seconds_after_finished=cluster.ttl_seconds_after_finished,
            pod_failure_policy=pod_failure_policy(),
            pod_replacement_policy="Failed",
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels, annotations=annotations),
                spec=_pod_spec(cluster, run),
            ),
        ),
    )


def checkov_skips(cluster: ClusterConfig) -> dict[str, str]:
    """The checkov checks that do not apply to this Job, each with its reason (scripts/scan_cluster.sh)."""
    skips = [] if "@" in cluster.image else [DIGEST_SKIP]
    return {f"{CHECKOV_SKIP}{n}": f"{check}={reason}" for n, (check, reason) in enumerate(skips, start=1)}


def render_jobs(experiments: ExperimentsFile, cluster: ClusterConfig, exp: str | None = None) -> list[client.V1Job]:
    """One Job per run of the sweep; names are checked to be unique."""
    return render_runs(cluster, plan_cluster_runs(experiments, cluster, exp))


def render_runs(cluster: ClusterConfig, runs: list[PlannedRun]) -> list[client.V1Job]:
    """One Job per planned run; names are checked to be unique."""
    jobs = [render_job(cluster, run) for run in runs]
    seen: dict[str, str] = {}
    for job in jobs:
        name, run_id = job.metadata.name, job.metadata.annotations[RUN_ID_KEY]
        if name in seen:
            raise UserError(f"runs {seen[name]} and {run_id} get the same Job name {name}")
        seen[name] = run_id
    return jobs


def to_dict(obj: Any) -> dict[str, Any]:
    """A client model as the plain JSON-ready dict the API server receives."""
    return client.ApiClient().sanitize_for_serialization(obj)


def to_yaml(objects: list[Any]) -> str:
    """Multi-document YAML of client models (or dicts)."""
    docs = [obj if isinstance(obj, dict) else to_dict(obj) for obj in objects]
    return yaml.safe_dump_all(docs, sort_keys=False, explicit_start=True)
