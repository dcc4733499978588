"""Kubernetes Jobs for the ablation matrix (DESIGN 5): the [cluster] table, Job rendering, submission.

One batch/v1 Job per experiment x seed, built from the official client's models; everything a Job needs
is checked before a request is sent. The API side (list, create, delete, logs) goes through `KubeApi`,
which turns API and connection errors into one-line UserErrors.
"""

import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import urllib3
import yaml
from kubernetes import client
from kubernetes import config as kubeconfig
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from runner.config import ExperimentsFile, RunConfig, parse_overrides
from runner.errors import EXIT_DIVERGED, EXIT_USER_ERROR, UserError

CONTAINER = "worker"
NAME_PREFIX = "clel-"
MAX_NAME = 63
LABEL = "clel/"  # prefix of this project's labels and annotations
MANAGED_BY = ("app.kubernetes.io/managed-by", "clel-runner")
APP_NAME = ("app.kubernetes.io/name", "clel-runner")
HASH_KEY = f"{LABEL}config-hash"
RUN_ID_KEY = f"{LABEL}run-id"
STORE_KEY = f"{LABEL}store"
JOB_NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")
WORKDIR_HOME = "/home/runner"
DATA_DIR = "/data"
TIMEOUT = (10, 60)  # (connect, read) seconds for one API request

DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")
LABEL_KEY = re.compile(r"([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
QUANTITY = re.compile(r"(\d+(\.\d+)?|\.\d+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


# --- the [cluster] table ---------------------------------------------------------------------------


def _check(pattern: re.Pattern[str], value: str, what: str, max_len: int = 253) -> str:
    if len(value) > max_len or not pattern.fullmatch(value):
        raise ValueError(f"{value!r} is not a valid {what}")
    return value


def check_image(image: str) -> str:
    """The image reference if it is pinned by a tag other than latest or by a sha256 digest."""
    name, at, digest = image.partition("@")
    if at:
        if not DIGEST.fullmatch(digest):
            raise ValueError(f"{image!r}: expected name@sha256:<64 hex digits>")
        return image
    last = name.rsplit("/", 1)[-1]
    tag = last.partition(":")[2] if ":" in last else ""
    if not tag:
        raise ValueError(f"{image!r} has no tag: pin it by tag (e.g. :0.1.0) or digest (@sha256:...)")
    if tag == "latest" or not TAG.fullmatch(tag):
        raise ValueError(f"{image!r}: tag {tag!r} does not pin the image; use a version tag or a digest")
    return image


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Toleration(_Table):
    key: str = ""
    operator: Literal["Exists", "Equal"] = "Equal"
    value: str = ""
    effect: Literal["", "NoSchedule", "PreferNoSchedule", "NoExecute"] = ""
    toleration_seconds: int | None = Field(default=None, ge=0)


class ClusterConfig(_Table):
    """experiments.toml [cluster]: where and how the Jobs run (README.md, "Running on Kubernetes", lists every key)."""

    image: str
    namespace: str = "clel"
    service_account: str = "clel-runner"
    store: str
    s3_endpoint: str = ""
    s3_region: str = "us-east-1"
    s3_addressing: Literal["auto", "path", "virtual"] = "auto"
    credentials_secret: str = "clel-s3"
    profile: str = "paper"
    sweep: str = "ablation"
    experiments: list[str] = Field(default_factory=list)
    seeds: list[int] | None = None
    overrides: list[str] = Field(default_factory=list)
    gpu_resource: str = "nvidia.com/gpu"
    gpus: int = Field(default=1, ge=0)
    cpu: str = "8"
    memory: str = "32Gi"
    shm_size: str = "8Gi"
    data_volume_claim: str = ""
    download_data: bool = True
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list)
    priority_class: str = ""
    image_pull_secrets: list[str] = Field(default_factory=list)
    run_as_user: int = Field(default=10001, ge=1)
    active_deadline_seconds: int = Field(default=4 * 86400, ge=60)
    ttl_seconds_after_finished: int = Field(default=7 * 86400, ge=0)
    backoff_limit: int = Field(default=3, ge=0)
    termination_grace_period_seconds: int = Field(default=300, ge=30)

    _image = field_validator("image")(check_image)

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, v: str) -> str:
        return _check(DNS_LABEL, v, "namespace name (RFC 1123 label: a-z, 0-9, '-', at most 63)", 63)

    @field_validator("service_account", "credentials_secret", "priority_class", "data_volume_claim")
    @classmethod
    def _object_name(cls, v: str) -> str:
        return v and _check(DNS_SUBDOMAIN, v, "object name (RFC 1123: lowercase a-z, 0-9, '-', '.')")

    @field_validator("image_pull_secrets")
    @classmethod
    def _secret_names(cls, v: list[str]) -> list[str]:
        return [_check(DNS_SUBDOMAIN, name, "Secret name (RFC 1123)") for name in v]

    @field_validator("sweep", "profile")
    @classmethod
    def _label_value(cls, v: str) -> str:
        if not v:
            raise ValueError("must not be empty")
        return _check(LABEL_VALUE, v, "label value (a-z, A-Z, 0-9, '-', '_', '.'; at most 63)", 63)

    @field_validator("store")
    @classmethod
    def _store(cls, v: str) -> str:
        if not re.fullmatch(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?", v):
            raise ValueError(f"{v!r}: a Job needs an S3 store, s3://bucket[/prefix]")
        return v

    @field_validator("s3_endpoint")
    @classmethod
    def _endpoint(cls, v: str) -> str:
        if v and not re.fullmatch(r"https?://[^\s/]+(/\S*)?", v):
            raise ValueError(f"{v!r}: expected http(s)://host[:port] or '' for AWS S3")
        return v

    @field_validator("gpu_resource")
    @classmethod
    def _resource(cls, v: str) -> str:
        return _check(LABEL_KEY, v, "resource name (e.g. nvidia.com/gpu)")

    @field_validator("cpu", "memory", "shm_size")
    @classmethod
    def _quantity(cls, v: str) -> str:
        return _check(QUANTITY, v, "quantity (e.g. 8, 500m, 32Gi)")

    @field_validator("node_selector")
    @classmethod
    def _selector(cls, v: dict[str, str]) -> dict[str, str]:
        for key, value in v.items():
            _check(LABEL_KEY, key, "label key")
            _check(LABEL_VALUE, value, "label value", 63)
        return v

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and (not v or min(v) < 0 or len(set(v)) != len(v)):
            raise ValueError("expected distinct seeds >= 0 (or leave it out to use [sweep] seeds)")
        return v


def _pydantic_line(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "table"
    if first["type"] == "missing":
        return f"{where}: missing (required)"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        return f"{where}: unknown key"
    got = f", got {first['input']!r}" if first["type"] != "value_error" and "input" in first else ""
    return f"{where}: {message[:1].lower()}{message[1:]}{got}"


def load_cluster(experiments: ExperimentsFile, image: str | None = None) -> ClusterConfig:
    """The validated [cluster] table (image replaced by `image` when given); UserError names the key."""
    source = f"{experiments.path} [cluster]"
    if not experiments.cluster:
        raise UserError(f"{experiments.path}: no [cluster] table (README.md, 'Running on Kubernetes', shows one)")
    if image:
        try:
            check_image(image)
        except ValueError as err:
            raise UserError(f"--image: {err}") from None
    table = dict(experiments.cluster) | ({"image": image} if image else {})
    try:
        cluster = ClusterConfig.model_validate(table)
    except ValidationError as err:
        raise UserError(f"{source}: {_pydantic_line(err)}") from None
    if cluster.profile not in experiments.profiles:
        known = ", ".join(experiments.profiles)
        raise UserError(f"{source}: profile: unknown profile {cluster.profile!r} (known: {known})")
    for name in cluster.experiments:
        if name not in experiments.experiments:
            raise UserError(f"{source}: experiments: unknown experiment {name!r}")
    return cluster


# --- rendering -------------------------------------------------------------------------------------


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
    }


def selector(cluster: ClusterConfig, exp: str | None = None, seed: int | None = None) -> str:
    """The label selector of this sweep's Jobs and pods, optionally one experiment and seed."""
    parts = [f"{MANAGED_BY[0]}={MANAGED_BY[1]}", f"{LABEL}sweep={cluster.sweep}"]
    if exp:
        parts.append(f"{LABEL}experiment={exp}")
    if seed is not None:
        parts.append(f"{LABEL}seed={seed}")
    return ",".join(parts)


def worker_args(cluster: ClusterConfig, cfg: RunConfig) -> list[str]:
    """`python -m runner` arguments that make the worker resolve exactly this run."""
    args = ["worker", "--exp", cfg.experiment, "--profile", cfg.profile, "--seed", str(cfg.seed)]
    args += ["--store", cluster.store, "--data-root", DATA_DIR]
    if cluster.download_data:
        args.append("--download")
    if cluster.overrides:
        args += ["--set", " ".join(cluster.overrides)]
    return args


def pod_failure_policy() -> client.V1PodFailurePolicy:
    """Preemption is ignored (not counted against backoffLimit); config errors and divergence fail the Job."""
    return client.V1PodFailurePolicy(
        rules=[
            client.V1PodFailurePolicyRule(
                action="Ignore",
                on_pod_conditions=[
                    client.V1PodFailurePolicyOnPodConditionsPattern(type="DisruptionTarget", status="True")
                ],
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
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            ref = client.V1SecretKeySelector(name=cluster.credentials_secret, key=key)
            env.append(client.V1EnvVar(name=key, value_from=client.V1EnvVarSource(secret_key_ref=ref)))
    return env


def _resources(cluster: ClusterConfig) -> client.V1ResourceRequirements:
    requests = {"cpu": cluster.cpu, "memory": cluster.memory}
    limits = {"memory": cluster.memory}
    if cluster.gpus:
        requests[cluster.gpu_resource] = limits[cluster.gpu_resource] = str(cluster.gpus)
    return client.V1ResourceRequirements(requests=requests, limits=limits)


def _container(cluster: ClusterConfig, cfg: RunConfig) -> client.V1Container:
    return client.V1Container(
        name=CONTAINER,
        image=cluster.image,
        image_pull_policy="IfNotPresent",
        command=["python", "-m", "runner"],
        args=worker_args(cluster, cfg),
        env=_env(cluster, cfg),
        resources=_resources(cluster),
        volume_mounts=[
            client.V1VolumeMount(name="dshm", mount_path="/dev/shm"),
            client.V1VolumeMount(name="data", mount_path=DATA_DIR),
        ],
        security_context=client.V1SecurityContext(
            allow_privilege_escalation=False,
            capabilities=client.V1Capabilities(drop=["ALL"]),
            run_as_non_root=True,
        ),
    )


def _data_volume(cluster: ClusterConfig) -> client.V1Volume:
    if cluster.data_volume_claim:
        claim = client.V1PersistentVolumeClaimVolumeSource(claim_name=cluster.data_volume_claim)
        return client.V1Volume(name="data", persistent_volume_claim=claim)
    return client.V1Volume(name="data", empty_dir=client.V1EmptyDirVolumeSource())


def _pod_spec(cluster: ClusterConfig, cfg: RunConfig) -> client.V1PodSpec:
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
        containers=[_container(cluster, cfg)],
        volumes=[
            client.V1Volume(
                name="dshm", empty_dir=client.V1EmptyDirVolumeSource(medium="Memory", size_limit=cluster.shm_size)
            ),
            _data_volume(cluster),
        ],
    )


def render_job(cluster: ClusterConfig, cfg: RunConfig) -> client.V1Job:
    """The batch/v1 Job of one run (experiment x seed)."""
    labels = run_labels(cluster, cfg)
    annotations = {HASH_KEY: cfg.config_hash, RUN_ID_KEY: cfg.run_id, STORE_KEY: cluster.store}
    return client.V1Job(
        api_version="batch/v1",
        kind="Job",
        metadata=client.V1ObjectMeta(
            name=job_name(cfg), namespace=cluster.namespace, labels=labels, annotations=annotations
        ),
        spec=client.V1JobSpec(
            backoff_limit=cluster.backoff_limit,
            active_deadline_seconds=cluster.active_deadline_seconds,
            ttl_seconds_after_finished=cluster.ttl_seconds_after_finished,
            pod_failure_policy=pod_failure_policy(),
            pod_replacement_policy="Failed",
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels, annotations=annotations),
                spec=_pod_spec(cluster, cfg),
            ),
        ),
    )


def plan_runs(experiments: ExperimentsFile, cluster: ClusterConfig, exp: str | None = None) -> list[RunConfig]:
    """The resolved runs of the sweep: the cluster's experiments (or `exp`) x seeds, in file order."""
    names = list(cluster.experiments or experiments.experiments)
    if exp:
        if exp not in experiments.experiments:
            known = ", ".join(experiments.experiments)
            raise UserError(f"--exp {exp}: unknown experiment (known: {known})")
        names = [exp]
    seeds = cluster.seeds if cluster.seeds is not None else experiments.seeds()
    overrides = parse_overrides(cluster.overrides)
    runs = [experiments.resolve(name, cluster.profile, seed, overrides) for name in names for seed in seeds]
    for cfg in runs:
        if cfg.runtime.device != "cpu" and cluster.gpus == 0:
            raise UserError(
                f"{experiments.path} [cluster]: gpus = 0, but profile {cluster.profile!r} runs "
                f"{cfg.experiment} on runtime.device = {cfg.runtime.device}; set gpus >= 1"
            )
    return runs


def render_jobs(experiments: ExperimentsFile, cluster: ClusterConfig, exp: str | None = None) -> list[client.V1Job]:
    """One Job per run of the sweep; names are checked to be unique."""
    jobs = [render_job(cluster, cfg) for cfg in plan_runs(experiments, cluster, exp)]
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


# --- the API ---------------------------------------------------------------------------------------


def connect() -> client.ApiClient:
    """An API client for the current kube context (KUBECONFIG or ~/.kube/config), else the in-cluster one."""
    configuration = client.Configuration()
    try:
        kubeconfig.load_kube_config(client_configuration=configuration)
    except (ConfigException, OSError, yaml.YAMLError) as kube_err:
        try:
            kubeconfig.load_incluster_config(client_configuration=configuration)
        except ConfigException:
            why = str(kube_err).splitlines()[0] if str(kube_err) else type(kube_err).__name__
            raise UserError(
                f"no Kubernetes cluster configured ({why}): set KUBECONFIG or a current context in ~/.kube/config"
            ) from None
    return client.ApiClient(configuration)


def _reason(err: Exception) -> str:
    text = str(getattr(err, "reason", None) or err)
    found = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    return found.group(1).strip() if found else type(getattr(err, "reason", None) or err).__name__


def api_message(err: ApiException) -> str:
    """The API server's one-line message of a failed request."""
    if not err.status:  # raised by the client itself (e.g. a TLS failure): the reason says what
        return str(err.reason).splitlines()[0]
    try:
        message = json.loads(err.body or "{}").get("message", "")
    except (ValueError, TypeError, AttributeError):
        message = ""
    return f"{err.status} {err.reason}" + (f": {message}" if message else "")


class KubeApi:
    """The requests this runner makes, in one namespace; errors become one-line UserErrors."""

    def __init__(self, api_client: client.ApiClient, namespace: str):
        self.api_client, self.namespace = api_client, namespace
        self.batch = client.BatchV1Api(api_client)
        self.core = client.CoreV1Api(api_client)
        self.host = api_client.configuration.host

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Turn API and connection failures into UserError."""
        try:
            yield
        except ApiException as err:
            if err.status == 404 and f'namespaces "{self.namespace}" not found' in api_message(err):
                raise UserError(
                    f"namespace {self.namespace} does not exist at {self.host}: "
                    "kubectl apply -f manifests/namespace.yaml -f manifests/serviceaccount.yaml"
                ) from None
            raise UserError(f"Kubernetes API {self.host}: {api_message(err)}") from None
        except urllib3.exceptions.HTTPError as err:
            raise UserError(f"cannot reach the Kubernetes API at {self.host} ({_reason(err)})") from None

    def list_jobs(self, label_selector: str) -> list[client.V1Job]:
        """Jobs matching a label selector."""
        with self.errors():
            return self.batch.list_namespaced_job(
                self.namespace, label_selector=label_selector, _request_timeout=TIMEOUT
            ).items

    def read_job(self, name: str) -> client.V1Job | None:
        """The Job, or None if it does not exist."""
        with self.errors():
            try:
                return self.batch.read_namespaced_job(name, self.namespace, _request_timeout=TIMEOUT)
            except ApiException as err:
                if err.status == 404:
                    return None
                raise

    def create_job(self, job: client.V1Job, dry_run: bool = False) -> client.V1Job | None:
        """Create a Job (server-side dry run if asked); None if one of that name exists already."""
        kwargs = {"dry_run": "All"} if dry_run else {}
        with self.errors():
            try:
                return self.batch.create_namespaced_job(self.namespace, job, _request_timeout=TIMEOUT, **kwargs)
            except ApiException as err:
                if err.status == 409:
                    return None
                raise

    def delete_job(self, name: str, dry_run: bool = False) -> bool:
        """Delete a Job and (in the background) its pods; False if it was already gone."""
        kwargs = {"dry_run": "All"} if dry_run else {}
        with self.errors():
            try:
                self.batch.delete_namespaced_job(
                    name, self.namespace, propagation_policy="Background", _request_timeout=TIMEOUT, **kwargs
                )
            except ApiException as err:
                if err.status == 404:
                    return False
                raise
        return True

    def wait_deleted(self, name: str, timeout_s: float = 120, poll_s: float = 1) -> None:
        """Wait until a deleted Job's name is free again."""
        deadline = time.monotonic() + timeout_s
        while self.read_job(name) is not None:
            if time.monotonic() > deadline:
                raise UserError(f"Job {name} is still being deleted after {timeout_s:.0f} s; submit again later")
            time.sleep(poll_s)

    def list_pods(self, label_selector: str) -> list[client.V1Pod]:
        """Pods matching a label selector."""
        with self.errors():
            return self.core.list_namespaced_pod(
                self.namespace, label_selector=label_selector, _request_timeout=TIMEOUT
            ).items

    def stream_log(self, pod: str, write: Callable[[str], Any], follow: bool = False) -> str | None:
        """Write the worker container's log; returns the API's message instead if it has none yet."""
        with self.errors():
            try:
                response = self.core.read_namespaced_pod_log(
                    pod,
                    self.namespace,
                    container=CONTAINER,
                    follow=follow,
                    _preload_content=False,
                    _request_timeout=(TIMEOUT[0], None) if follow else TIMEOUT,
                )
            except ApiException as err:
                if err.status in (400, 404):
                    return api_message(err)
                raise
            try:
                for chunk in response.stream(4096):
                    write(chunk.decode("utf-8", errors="replace"))
            finally:
                response.release_conn()
        return None


# --- submission ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What submit did (or would do) for one Job."""

    action: Literal["created", "exists", "conflict", "replaced"]
    name: str
    run_id: str
    detail: str = ""


def _annotation(job: client.V1Job, key: str) -> str | None:
    return (job.metadata.annotations or {}).get(key)


def _same_run(a: client.V1Job, b: client.V1Job) -> bool:
    return _annotation(a, RUN_ID_KEY) == _annotation(b, RUN_ID_KEY) and _annotation(a, STORE_KEY) == _annotation(
        b, STORE_KEY
    )


def _conflicts(job: client.V1Job, existing: list[client.V1Job]) -> list[client.V1Job]:
    """Existing Jobs that hold this Job's name or its run (store + run id) with another config hash."""
    mine = _annotation(job, HASH_KEY)
    return [
        other
        for other in existing
        if (other.metadata.name == job.metadata.name or _same_run(other, job)) and _annotation(other, HASH_KEY) != mine
    ]


def submit_jobs(api: KubeApi, jobs: list[client.V1Job], dry_run: bool = False, replace: bool = False) -> list[Outcome]:
    """Create the missing Jobs; report existing ones; replace conflicting ones only when asked."""
    existing = api.list_jobs(f"{MANAGED_BY[0]}={MANAGED_BY[1]}")
    by_name = {job.metadata.name: job for job in existing}
    outcomes = []
    for job in jobs:
        name, run_id = job.metadata.name, _annotation(job, RUN_ID_KEY) or ""
        conflicts = _conflicts(job, existing)
        if not conflicts and name in by_name:
            outcomes.append(Outcome("exists", name, run_id))
            continue
        if conflicts and not replace:
            old = conflicts[0]
            theirs, mine = _annotation(old, HASH_KEY), _annotation(job, HASH_KEY)
            detail = f"Job {old.metadata.name} has config {theirs}, this one {mine}"
            outcomes.append(Outcome("conflict", name, run_id, detail))
            continue
        for old in conflicts:
            api.delete_job(old.metadata.name, dry_run)
            if old.metadata.name == name and not dry_run:
                api.wait_deleted(name)
        name_still_taken = dry_run and any(old.metadata.name == name for old in conflicts)
        created = job if name_still_taken else api.create_job(job, dry_run)
        if created is None:
            outcomes.append(_after_race(api, job))
            continue
        action = "replaced" if conflicts else "created"
        replaced = ", ".join(old.metadata.name for old in conflicts)
        outcomes.append(Outcome(action, name, run_id, f"was {replaced}" if conflicts else ""))
    return outcomes


def _after_race(api: KubeApi, job: client.V1Job) -> Outcome:
    """The create hit a Job of the same name made meanwhile: classify it like any existing one."""
    name, run_id = job.metadata.name, _annotation(job, RUN_ID_KEY) or ""
    current = api.read_job(name)
    if current is not None and _annotation(current, HASH_KEY) != _annotation(job, HASH_KEY):
        return Outcome("conflict", name, run_id, f"Job {name} has config {_annotation(current, HASH_KEY)}")
    return Outcome("exists", name, run_id)


# --- status ----------------------------------------------------------------------------------------


def job_of(pod: client.V1Pod) -> str | None:
    """The name of the Job that owns a pod (from the Job controller's labels)."""
    labels = pod.metadata.labels or {}
    return next((labels[key] for key in JOB_NAME_LABELS if key in labels), None)


def job_condition(job: client.V1Job, kind: str) -> client.V1JobCondition | None:
    """The Job's condition of this type if it is True, else None."""
    for condition in (job.status and job.status.conditions) or []:
        if condition.type == kind and condition.status == "True":
            return condition
    return None


def job_finished(job: client.V1Job) -> bool:
    """Whether the Job has completed or failed for good."""
    return job_condition(job, "Complete") is not None or job_condition(job, "Failed") is not None


def newest_pod(pods: list[client.V1Pod]) -> client.V1Pod | None:
    """The most recently created pod."""
    return max(pods, key=lambda pod: pod.metadata.creation_timestamp, default=None)
