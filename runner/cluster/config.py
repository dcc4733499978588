"""experiments.toml [cluster]: where and how the Jobs run, validated before anything is rendered or sent.

`load_cluster` gives the checked `ClusterConfig` (docs/KUBERNETES.md lists every key) or a
one-line UserError naming the key; `check_image` accepts an image pinned by a version tag or a sha256 digest.
"""

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from runner.config import ExperimentsFile, parse_overrides
from runner.errors import UserError
from runner.plan.planner import PlannedRun, plan_runs
from runner.store.base import is_valid_key

DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")
LABEL_KEY = re.compile(r"([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
QUANTITY = re.compile(r"(\d+(\.\d+)?|\.\d+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


S3_REGION = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")


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
    """experiments.toml [cluster]: where and how the Jobs run (docs/KUBERNETES.md lists every key)."""

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
    queue_name: str = ""  # a Kueue LocalQueue: Jobs are created suspended with kueue.x-k8s.io/queue-name

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

    @field_validator("queue_name")
    @classmethod
    def _queue_name(cls, v: str) -> str:
        # a LocalQueue's name: Kueue's webhook denies a Job whose queue-name label is not a DNS-1123 subdomain
        what = "label value naming a LocalQueue (RFC 1123: lowercase a-z, 0-9, '-', '.'; at most 63)"
        return v and _check(DNS_SUBDOMAIN, v, what, 63)

    @field_validator("store")
    @classmethod
    def _store(cls, v: str) -> str:
        match = re.fullmatch(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](?:/(.*))?", v)
        if not match:
            raise ValueError(f"{v!r}: a Job needs an S3 store, s3://bucket[/prefix]")
        prefix = (match.group(1) or "").strip("/")
        if prefix and not is_valid_key(prefix, prefix=True):
            raise ValueError(f"{v!r}: the prefix must be parts of [A-Za-z0-9._-], none '.' or '..'")
        return v

    @field_validator("s3_region")
    @classmethod
    def _region(cls, v: str) -> str:
        return _check(S3_REGION, v, "S3 region (lowercase letters, digits and '-', e.g. us-east-1)", 63)

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

    @field_validator("experiments")
    @classmethod
    def _experiments(cls, v: list[str]) -> list[str]:
        twice = [name for i, name in enumerate(v) if name in v[:i]]
        if twice:
            raise ValueError(f"{twice[0]} is listed twice")
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


def load_cluster(
    experiments: ExperimentsFile, image: str | None = None, profile: str | None = None, seed: int | None = None
) -> ClusterConfig:
    """The validated [cluster] table (image, profile and seeds replaced by `image`, `profile` and [`seed`] when
    given); UserError names the key."""
    source = f"{experiments.path} [cluster]"
    if not experiments.cluster:
        raise UserError(f"{experiments.path}: no [cluster] table (docs/KUBERNETES.md shows one)")
    if image:
        try:
            check_image(image)
        except ValueError as err:
            raise UserError(f"--image: {err}") from None
    if profile is not None and profile not in experiments.profiles:
        raise UserError(f"--profile {profile}: unknown profile (known: {', '.join(experiments.profiles)})")
    table = dict(experiments.cluster) | ({"image": image} if image else {})
    table |= ({"profile": profile} if profile is not None else {}) | ({"seeds": [seed]} if seed is not None else {})
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


def plan_cluster_runs(experiments: ExperimentsFile, cluster: ClusterConfig, exp: str | None = None) -> list[PlannedRun]:
    """The sweep's runs (the one planner): the cluster's experiments (or `exp`) x [sweep] grid x seeds."""
    names = list(cluster.experiments) or None
    if exp:
        if exp not in experiments.experiments:
            known = ", ".join(experiments.experiments)
            raise UserError(f"--exp {exp}: unknown experiment (known: {known})")
        names = [exp]
    runs = plan_runs(experiments, cluster.profile, names, cluster.seeds, parse_overrides(cluster.overrides))
    for run in runs:
        if run.config.runtime.device != "cpu" and cluster.gpus == 0:
            raise UserError(
                f"{experiments.path} [cluster]: gpus = 0, but profile {cluster.profile!r} runs "
                f"{run.config.experiment} on runtime.device = {run.config.runtime.device}; set gpus >= 1"
            )
    return runs
