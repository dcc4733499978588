"""Kubernetes Jobs: rendering (validated offline with kubernetes-validate), submit/status/logs/cancel.

The API server is faked below the official client: a stand-in for urllib3's PoolManager answers the
requests that the client's own models, serialisation and REST layer produce.
"""

import io
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import fire
import kubernetes_validate
import pytest
import urllib3
import yaml
from kubernetes import client

import runner.run
from runner import k8s
from runner.cli import Commands
from runner.cluster_cli import ClusterCommands, age, format_table
from runner.config import ExperimentsFile
from runner.errors import UserError
from runner.store import RunStore, open_store

REPO = Path(__file__).resolve().parents[1]
MANIFESTS = sorted((REPO / "manifests").glob("*.yaml"))
RFC1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
K8S_VERSIONS = ["1.31", kubernetes_validate.latest_version()]
FAKE_KEY_ID = "AKIAFAKEKEYID0123456789"
FAKE_SECRET = "fake-secret-Zq9+/wXYZ-never-in-yaml"
SELECTOR = "app.kubernetes.io/managed-by=clel-runner,clel/sweep=ablation"

CLUSTER: dict[str, Any] = {
    "image": "registry.example.com/clel-runner:0.1.0",
    "namespace": "clel",
    "store": "s3://clel-test/sweep",
    "profile": "paper",
}
FULL_CLUSTER: dict[str, Any] = CLUSTER | {
    "s3_endpoint": "http://minio.clel.svc.cluster.local:9000",
    "s3_addressing": "path",
    "overrides": ["train.iterations=20000", "runtime.checkpoint_every=500"],
    "node_selector": {"cloud.google.com/gke-accelerator": "nvidia-h100-80gb"},
    "tolerations": [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "spot", "operator": "Equal", "value": "true", "effect": "NoExecute", "toleration_seconds": 60},
    ],
    "priority_class": "preemptible-training",
    "image_pull_secrets": ["registry-creds"],
    "data_volume_claim": "clel-datasets",
}


# --- experiments.toml with a chosen [cluster] table ----------------------------------------------------


def toml_value(value: Any) -> str:
    """A Python value as TOML (strings, numbers, booleans, lists, inline tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + " }"


def write_config(tmp_path: Path, cluster: dict[str, Any] | None, extra: str = "") -> Path:
    """The repository's experiments.toml with [cluster] replaced (or left out), plus extra TOML."""
    text = re.sub(r"(?m)^\[cluster\]\n(?:(?!\[).*\n?)*", "", (REPO / "experiments.toml").read_text())
    if cluster is not None:
        text += "\n[cluster]\n" + "".join(f"{key} = {toml_value(value)}\n" for key, value in cluster.items())
    path = tmp_path / "experiments.toml"
    path.write_text(text + extra)
    return path


def rendered(path: Path, exp: str | None = None) -> tuple[ExperimentsFile, k8s.ClusterConfig, list[client.V1Job]]:
    experiments = ExperimentsFile(path)
    cluster = k8s.load_cluster(experiments)
    return experiments, cluster, k8s.render_jobs(experiments, cluster, exp)


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "runner", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def test_the_cli_has_the_cluster_commands():
    assert issubclass(Commands, ClusterCommands), "runner.cli.Commands must inherit ClusterCommands"


# --- rendering -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_rendered_job_and_manifest_validates_strictly(tmp_path, version):
    jobs = rendered(write_config(tmp_path, FULL_CLUSTER))[2]
    jobs += rendered(write_config(tmp_path, CLUSTER | {"profile": "tiny", "gpus": 0, "credentials_secret": ""}))[2]
    assert len(jobs) == 2 * len(ExperimentsFile(REPO / "experiments.toml").experiments) * 3
    for job in jobs:
        assert kubernetes_validate.validate(k8s.to_dict(job), version, strict=True)
    for path in MANIFESTS:
        for doc in yaml.safe_load_all(path.read_text()):
            assert kubernetes_validate.validate(doc, version, strict=True), path.name
    assert {p.name for p in MANIFESTS} >= {"namespace.yaml", "serviceaccount.yaml", "secret-example.yaml", "minio.yaml"}


def test_strict_validation_would_catch_a_misspelled_field(tmp_path):
    doc = k8s.to_dict(rendered(write_config(tmp_path, CLUSTER), "baseline")[2][0])
    doc["spec"]["backofLimit"] = doc["spec"].pop("backoffLimit")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, K8S_VERSIONS[-1], strict=True)


def test_names_are_rfc1123_labels_unique_across_the_matrix_and_carry_the_hash(tmp_path):
    long_a, long_b = "an_unusually_long_experiment_name_about_the_encoder_" + "a", "an_unusually_long_" * 3 + "b"
    extra = f'\n[experiments.{long_a}]\ncrl.method = "byol"\n\n[experiments.{long_b}]\ncrl.method = "moco"\n'
    experiments, cluster, jobs = rendered(write_config(tmp_path, CLUSTER | {"seeds": [0, 1, 2, 10, 123456]}, extra))
    assert len(jobs) == len(experiments.experiments) * 5
    names = [job.metadata.name for job in jobs]
    assert len(set(names)) == len(names)
    for job in jobs:
        name, labels = job.metadata.name, job.metadata.labels
        assert len(name) <= 63 and RFC1123_LABEL.match(name), name
        assert name.endswith(f"-s{labels['clel/seed']}-{job.metadata.annotations['clel/config-hash']}")
        assert all(len(value) <= 63 for value in labels.values())
    assert [job_name for job_name in names if "unusually" in job_name][0].startswith("clel-an-unusually-long-")
    again = rendered(write_config(tmp_path, CLUSTER | {"seeds": [0, 1, 2, 10, 123456]}, extra))[2]
    assert [job.metadata.name for job in again] == names  # deterministic


def test_job_contract_for_a_preemptible_gpu_run(tmp_path):
    experiments, cluster, jobs = rendered(write_config(tmp_path, FULL_CLUSTER), "no_norm_split")
    assert [job.metadata.labels["clel/seed"] for job in jobs] == ["0", "1", "2"]
    cfg = experiments.resolve("no_norm_split", "paper", 1, {"train.iterations": 20000, "runtime.checkpoint_every": 500})
    job = k8s.to_dict(jobs[1])
    spec, pod = job["spec"], job["spec"]["template"]["spec"]
    assert job["metadata"]["annotations"]["clel/config-hash"] == cfg.config_hash
    assert job["metadata"]["labels"] == {
        "app.kubernetes.io/name": "clel-runner",
        "app.kubernetes.io/managed-by": "clel-runner",
        "clel/sweep": "ablation",
        "clel/profile": "paper",
        "clel/experiment": "no_norm_split",
        "clel/seed": "1",
        "clel/config-hash": cfg.config_hash,
    }
    assert job["metadata"]["name"] == f"clel-no-norm-split-paper-s1-{cfg.config_hash}"
    assert pod["restartPolicy"] == "Never"
    assert spec["podReplacementPolicy"] == "Failed"
    assert (spec["backoffLimit"], spec["ttlSecondsAfterFinished"], spec["activeDeadlineSeconds"]) == (3, 604800, 345600)
    assert pod["terminationGracePeriodSeconds"] >= 120
    rules = spec["podFailurePolicy"]["rules"]
    assert [rule["action"] for rule in rules] == ["Ignore", "FailJob"]
    assert rules[0]["onPodConditions"] == [{"type": "DisruptionTarget", "status": "True"}]
    assert rules[1]["onExitCodes"] == {"containerName": "worker", "operator": "In", "values": [2, 3]}
    assert not any(137 in rule.get("onExitCodes", {}).get("values", []) for rule in rules)
    (container,) = pod["containers"]
    assert container["name"] == "worker" and container["image"] == "registry.example.com/clel-runner:0.1.0"
    assert container["command"] + container["args"] == [
        *("python", "-m", "runner", "worker", "--exp", "no_norm_split", "--profile", "paper", "--seed", "1"),
        *("--store", "s3://clel-test/sweep", "--data-root", "/data", "--download"),
        *("--set", "train.iterations=20000 runtime.checkpoint_every=500"),
    ]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "8Gi"}} in pod["volumes"]
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "clel-datasets"}} in pod["volumes"]
    assert {"name": "dshm", "mountPath": "/dev/shm"} in container["volumeMounts"]
    assert pod["automountServiceAccountToken"] is False and pod["serviceAccountName"] == "clel-runner"
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
    }
    assert pod["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-h100-80gb"}
    assert pod["priorityClassName"] == "preemptible-training"
    assert pod["tolerations"][1] == {
        "effect": "NoExecute",
        "key": "spot",
        "operator": "Equal",
        "tolerationSeconds": 60,
        "value": "true",
    }
    env = {item["name"]: item for item in container["env"]}
    assert env["AWS_ENDPOINT_URL_S3"]["value"] == "http://minio.clel.svc.cluster.local:9000"
    assert env["CLEL_S3_ADDRESSING"]["value"] == "path"


class Resolved(Exception):
    """Raised by a stand-in for runner.run.execute: carries the config the worker resolved."""


def test_the_worker_resolves_the_config_hash_its_job_was_named_for(tmp_path, monkeypatch):
    def capture(cfg, store_uri):
        raise Resolved(cfg, store_uri)

    monkeypatch.setattr(runner.run, "execute", capture)
    monkeypatch.chdir(tmp_path)
    for job in rendered(write_config(tmp_path, FULL_CLUSTER), "byol")[2]:
        args = job.spec.template.spec.containers[0].args
        with pytest.raises(Resolved) as resolved:
            fire.Fire(Commands, command=args)
        cfg, store_uri = resolved.value.args
        assert cfg.config_hash == job.metadata.annotations["clel/config-hash"]
        assert (cfg.run_id, store_uri) == (job.metadata.annotations["clel/run-id"], "s3://clel-test/sweep")
        assert (cfg.train.iterations, cfg.runtime.data_root, cfg.runtime.download) == (20000, "/data", True)


def test_cpu_profile_without_gpu_requests_none(tmp_path):
    jobs = rendered(write_config(tmp_path, CLUSTER | {"profile": "tiny", "gpus": 0}), "baseline")[2]
    resources = jobs[0].spec.template.spec.containers[0].resources
    assert "nvidia.com/gpu" not in resources.limits and "nvidia.com/gpu" not in resources.requests


def test_no_credential_value_appears_in_the_rendered_yaml(tmp_path):
    fake = {"AWS_ACCESS_KEY_ID": FAKE_KEY_ID, "AWS_SECRET_ACCESS_KEY": FAKE_SECRET, "AWS_SESSION_TOKEN": FAKE_SECRET}
    result = run_cli("render", "--config", str(write_config(tmp_path, FULL_CLUSTER)), env=fake)
    assert result.returncode == 0, result.stderr
    assert FAKE_KEY_ID not in result.stdout and FAKE_SECRET not in result.stdout
    docs = list(yaml.safe_load_all(result.stdout))
    assert len(docs) == 18 and all(doc["kind"] == "Job" for doc in docs)
    for doc in docs:
        env = {item["name"]: item for item in doc["spec"]["template"]["spec"]["containers"][0]["env"]}
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            assert env[key] == {"name": key, "valueFrom": {"secretKeyRef": {"name": "clel-s3", "key": key}}}
        assert "AWS_SESSION_TOKEN" not in env
    for path in MANIFESTS:
        assert FAKE_SECRET not in path.read_text()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"image": None}, "image: missing"),
        ({"gpus": 0}, "gpus = 0, but profile 'paper'"),
        ({"namespace": "CLEL_runs"}, "namespace: 'CLEL_runs' is not a valid namespace name"),
        ({"image": "registry.example.com/clel-runner:latest"}, "image: 'registry.example.com/clel-runner:latest'"),
    ],
    ids=["missing-image", "no-gpu-for-paper", "bad-namespace", "latest-tag"],
)
def test_bad_cluster_section_exits_2_with_one_line(tmp_path, change, expected):
    cluster = {k: v for k, v in (CLUSTER | change).items() if v is not None}
    result = run_cli("render", "--config", str(write_config(tmp_path, cluster)))
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"error: {tmp_path / 'experiments.toml'} [cluster]: ")
    assert expected in result.stderr


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"image": "registry.example.com:5000/clel-runner"}, "has no tag"),
        ({"image": "clel-runner@sha256:1234"}, "expected name@sha256"),
        ({"backofLimit": 3}, "backofLimit: unknown key"),
        ({"credentials_secret": "S3_creds"}, "credentials_secret: 'S3_creds' is not a valid object name"),
        ({"sweep": "ablation study"}, "sweep: 'ablation study' is not a valid label value"),
        ({"priority_class": "High"}, "priority_class"),
        ({"node_selector": {"gpu": "a b"}}, "node_selector: 'a b' is not a valid label value"),
        ({"store": "/data/runs"}, "a Job needs an S3 store"),
        ({"memory": "32GB"}, "memory: '32GB' is not a valid quantity"),
        ({"gpus": -1}, "gpus: input should be greater than or equal to 0"),
        ({"profile": "huge"}, "unknown profile 'huge'"),
        ({"experiments": ["baseline", "nope"]}, "unknown experiment 'nope'"),
        ({"tolerations": [{"key": "gpu", "operator": "Maybe"}]}, "tolerations.0.operator"),
        ({"overrides": ["train.iterations=many"]}, "train.iterations"),
    ],
)
def test_bad_cluster_values_are_user_errors(tmp_path, change, expected):
    path = write_config(tmp_path, CLUSTER | change)
    with pytest.raises(UserError) as err:
        rendered(path)
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_pinned_images_pass():
    digest = "sha256:" + "ab" * 32
    for image in ("clel-runner:3f2a9c1b", "localhost:5000/team/clel-runner:v1.2-cpu", f"ghcr.io/x/clel@{digest}"):
        assert k8s.check_image(image) == image


def test_no_cluster_table_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match=r"no \[cluster\] table"):
        rendered(write_config(tmp_path, None))


# --- a fake API server below the official client -----------------------------------------------------


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: Any


def _matches(labels: dict[str, str], selector: str) -> bool:
    pairs = [part.split("=", 1) for part in selector.split(",") if part]
    return all(labels.get(key) == value for key, value in pairs)


class FakeKubeServer:
    """Stands in for urllib3's PoolManager inside the client's RESTClientObject; keeps Jobs and pods."""

    def __init__(self, namespace: str = "clel"):
        self.namespace = namespace
        self.requests: list[Request] = []
        self.jobs: dict[str, dict[str, Any]] = {}
        self.pods: dict[str, dict[str, Any]] = {}
        self.logs: dict[str, str] = {}
        self.on_log = None  # called with the pod name after a log request, to change the world

    # what the client calls
    def request(self, method, url, fields=None, body=None, preload_content=True, timeout=None, headers=None, **_):
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query)) | dict(parse_qsl(urlencode(fields or [])))  # as urllib3 encodes
        self.requests.append(Request(method, parts.path, query, json.loads(body) if body else None))
        status, payload, content_type = self._route(method, parts.path, query, self.requests[-1].body)
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return urllib3.HTTPResponse(
            body=io.BytesIO(data),
            status=status,
            reason={200: "OK", 201: "Created", 404: "Not Found", 409: "Conflict"}.get(status, "Error"),
            headers={"Content-Type": content_type},
            preload_content=preload_content,
        )

    # seeding the world with the client's models
    def add_job(self, job: client.V1Job, created: datetime | None = None, **status: Any) -> dict[str, Any]:
        data = k8s.to_dict(job)
        data["metadata"]["creationTimestamp"] = (created or datetime.now(UTC)).isoformat()
        if status:
            data["status"] = k8s.to_dict(client.V1JobStatus(**status))
        self.jobs[data["metadata"]["name"]] = data
        return data

    def add_pod(self, job: dict[str, Any], name: str, phase: str, minutes_ago: int = 0, log: str = "", **kw) -> None:
        labels = job["spec"]["template"]["metadata"]["labels"] | {
            "batch.kubernetes.io/job-name": job["metadata"]["name"]
        }
        pod = client.V1Pod(
            api_version="v1",
            kind="Pod",
            metadata=client.V1ObjectMeta(
                name=name,
                namespace=self.namespace,
                labels=labels,
                creation_timestamp=datetime.now(UTC) - timedelta(minutes=minutes_ago),
            ),
            status=client.V1PodStatus(phase=phase, **kw),
        )
        self.pods[name] = k8s.to_dict(pod)
        self.logs[name] = log

    def sent(self, method: str, kind: str = "") -> list[Request]:
        return [r for r in self.requests if r.method == method and r.path.rstrip("/").endswith(kind)]

    # the API
    def _status(self, code: int, reason: str, message: str) -> tuple[int, Any, str]:
        body = client.V1Status(api_version="v1", kind="Status", status="Failure", reason=reason, message=message)
        return code, k8s.to_dict(body) | {"code": code}, "application/json"

    def _route(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any, str]:
        found = re.fullmatch(r"/(?:api/v1|apis/batch/v1)/namespaces/([^/]+)/(jobs|pods)(?:/([^/]+))?(/log)?", path)
        assert found, f"unexpected request {method} {path}"
        namespace, kind, name, log = found.groups()
        if namespace != self.namespace:
            return self._status(404, "NotFound", f'namespaces "{namespace}" not found')
        store = self.jobs if kind == "jobs" else self.pods
        if log:
            if self.on_log:
                self.on_log(name)
            return 200, self.logs[name].encode(), "text/plain"
        if method == "GET" and name is None:
            items = [
                item for item in store.values() if _matches(item["metadata"].get("labels", {}), query["labelSelector"])
            ]
            model = client.V1JobList if kind == "jobs" else client.V1PodList
            api_version = "batch/v1" if kind == "jobs" else "v1"
            kind_name = "JobList" if kind == "jobs" else "PodList"
            return 200, k8s.to_dict(model(api_version=api_version, kind=kind_name, items=items)), "application/json"
        if method == "GET":
            if name not in store:
                return self._status(404, "NotFound", f'{kind}.batch "{name}" not found')
            return 200, store[name], "application/json"
        if method == "POST":
            name = body["metadata"]["name"]
            if name in store:
                return self._status(409, "AlreadyExists", f'jobs.batch "{name}" already exists')
            created = body | {"metadata": body["metadata"] | {"creationTimestamp": datetime.now(UTC).isoformat()}}
            if query.get("dryRun") != "All":
                store[name] = created
            return 201, created, "application/json"
        if method == "DELETE":
            if name not in store:
                return self._status(404, "NotFound", f'jobs.batch "{name}" not found')
            if query.get("dryRun") != "All":
                del store[name]
            body = client.V1Status(api_version="v1", kind="Status", status="Success")
            return 200, k8s.to_dict(body), "application/json"
        raise AssertionError(f"unexpected request {method} {path}")


@pytest.fixture
def kube(monkeypatch) -> FakeKubeServer:
    """A real ApiClient whose HTTP pool is the fake server; `k8s.connect` returns it."""
    api_client = client.ApiClient(client.Configuration(host="https://kube.test:6443"))
    server = FakeKubeServer()
    api_client.rest_client.pool_manager = server
    monkeypatch.setattr(k8s, "connect", lambda: api_client)
    return server


# --- submit ------------------------------------------------------------------------------------------


def test_submit_creates_what_is_missing_and_twice_creates_nothing(tmp_path, kube, capsys):
    path = write_config(tmp_path, CLUSTER)
    jobs = rendered(path)[2]
    ClusterCommands().submit(config=str(path))
    posts = kube.sent("POST", "jobs")
    assert [post.body for post in posts] == [k8s.to_dict(job) for job in jobs]
    assert all(post.path == "/apis/batch/v1/namespaces/clel/jobs" for post in posts)
    assert kube.sent("GET", "jobs")[0].query["labelSelector"] == "app.kubernetes.io/managed-by=clel-runner"
    assert f"{len(jobs)} created" in capsys.readouterr().out
    ClusterCommands().submit(config=str(path))
    assert len(kube.sent("POST", "jobs")) == len(jobs)
    out = capsys.readouterr().out
    assert f"{len(jobs)} exists" in out and "created" not in out
    assert re.search(r"^exists\s+clel-baseline-paper-s0-[0-9a-f]{12}\s+baseline-paper-s0$", out, re.M)


def test_submit_one_experiment(tmp_path, kube, capsys):
    ClusterCommands().submit(exp="moco", config=str(write_config(tmp_path, CLUSTER)))
    assert [p.body["metadata"]["labels"]["clel/experiment"] for p in kube.sent("POST", "jobs")] == ["moco"] * 3


def test_submit_reports_a_conflict_and_replaces_only_when_asked(tmp_path, kube, capsys):
    path = write_config(tmp_path, CLUSTER)
    (tmp_path / "old").mkdir()
    old_path = write_config(tmp_path / "old", CLUSTER)
    old_path.write_text(old_path.read_text().replace("train.iterations = 100000", "train.iterations = 90000"))
    old = rendered(old_path, "byol")[2][0]  # byol seed 0, rendered for another config
    kube.add_job(old)
    new = rendered(path, "byol")[2][0]
    assert old.metadata.name != new.metadata.name

    with pytest.raises(UserError, match=r"1 run\(s\) already have a Job with another config"):
        ClusterCommands().submit(exp="byol", config=str(path))
    out = capsys.readouterr().out
    assert re.search(
        rf"^conflict\s+{new.metadata.name}\s+byol-paper-s0\s+\(Job {old.metadata.name} has config", out, re.M
    )
    assert [p.body["metadata"]["name"] for p in kube.sent("POST", "jobs")] == [
        j.metadata.name for j in rendered(path, "byol")[2][1:]
    ]
    assert kube.sent("DELETE") == []

    ClusterCommands().submit(exp="byol", replace=True, config=str(path))
    (delete,) = kube.sent("DELETE")
    assert delete.path.endswith(f"/jobs/{old.metadata.name}") and delete.query["propagationPolicy"] == "Background"
    assert new.metadata.name in kube.jobs and old.metadata.name not in kube.jobs
    assert re.search(rf"^replaced\s+{new.metadata.name}.*was {old.metadata.name}", capsys.readouterr().out, re.M)


def test_same_name_with_another_hash_annotation_is_a_conflict(tmp_path, kube, capsys):
    path = write_config(tmp_path, CLUSTER)
    job = rendered(path, "mae")[2][0]
    stale = kube.add_job(job)
    stale["metadata"]["annotations"]["clel/config-hash"] = "0123456789ab"
    with pytest.raises(UserError):
        ClusterCommands().submit(exp="mae", config=str(path))
    assert "conflict" in capsys.readouterr().out
    assert kube.jobs[job.metadata.name]["metadata"]["annotations"]["clel/config-hash"] == "0123456789ab"
    ClusterCommands().submit(exp="mae", replace=True, dry_run=True, config=str(path))
    assert re.search(rf"^would replace\s+{job.metadata.name}", capsys.readouterr().out, re.M)
    assert [d.query.get("dryRun") for d in kube.sent("DELETE")] == ["All"]
    assert all(post.body["metadata"]["name"] != job.metadata.name for post in kube.sent("POST", "jobs"))
    assert kube.jobs[job.metadata.name]["metadata"]["annotations"]["clel/config-hash"] == "0123456789ab"
    ClusterCommands().submit(exp="mae", replace=True, config=str(path))
    delete, read_back = kube.sent("DELETE")[-1], kube.sent("GET", job.metadata.name)
    assert delete.query["propagationPolicy"] == "Background" and "dryRun" not in delete.query
    assert read_back  # waited until the name was free before creating it again
    assert (
        kube.jobs[job.metadata.name]["metadata"]["annotations"]["clel/config-hash"]
        == job.metadata.labels["clel/config-hash"]
    )


def test_dry_run_asks_the_server_and_persists_nothing(tmp_path, kube, capsys):
    ClusterCommands().submit(exp="baseline", dry_run=True, config=str(write_config(tmp_path, CLUSTER)))
    posts = kube.sent("POST", "jobs")
    assert len(posts) == 3 and all(post.query["dryRun"] == "All" for post in posts)
    assert kube.jobs == {}
    assert "would create" in capsys.readouterr().out


def test_a_job_created_meanwhile_counts_as_existing(tmp_path, kube, monkeypatch, capsys):
    path = write_config(tmp_path, CLUSTER)
    jobs = rendered(path, "baseline")[2]
    original = k8s.KubeApi.list_jobs
    monkeypatch.setattr(k8s.KubeApi, "list_jobs", lambda self, sel: [original(self, sel), kube.add_job(jobs[0])][0])
    ClusterCommands().submit(exp="baseline", config=str(path))
    assert "2 created, 1 exists" in capsys.readouterr().out


def test_missing_namespace_is_one_line(tmp_path, kube):
    with pytest.raises(UserError, match=r"^namespace elsewhere does not exist at https://kube.test:6443: kubectl"):
        ClusterCommands().submit(config=str(write_config(tmp_path, CLUSTER | {"namespace": "elsewhere"})))


def test_bad_cluster_section_sends_nothing(tmp_path, kube):
    with pytest.raises(UserError, match="gpus = 0"):
        ClusterCommands().submit(config=str(write_config(tmp_path, CLUSTER | {"gpus": 0})))
    assert kube.requests == []


# --- status, logs, cancel --------------------------------------------------------------------------


def _running(kube: FakeKubeServer, path: Path) -> list[dict[str, Any]]:
    """baseline s0 preempted once and running again, s1 done, s2 waiting for its image."""
    jobs = [kube.add_job(job, datetime.now(UTC) - timedelta(hours=3)) for job in rendered(path, "baseline")[2]]
    kube.add_pod(jobs[0], "b0-old", "Failed", minutes_ago=90, log="step 100\npreempted: SIGTERM\n")
    kube.add_pod(jobs[0], "b0-new", "Running", minutes_ago=30, log="resumed baseline-paper-s0 at step 200\n")
    kube.jobs[jobs[1]["metadata"]["name"]]["status"] = k8s.to_dict(
        client.V1JobStatus(succeeded=1, conditions=[client.V1JobCondition(type="Complete", status="True")])
    )
    kube.add_pod(jobs[1], "b1", "Succeeded", minutes_ago=100, log="done\n")
    waiting = client.V1ContainerStatus(
        name="worker",
        image="x",
        image_id="",
        ready=False,
        restart_count=0,
        state=client.V1ContainerState(waiting=client.V1ContainerStateWaiting(reason="ImagePullBackOff")),
    )
    kube.add_pod(jobs[2], "b2", "Pending", container_statuses=[waiting])
    return jobs


def test_status_table_by_label_with_checkpoint_steps_from_the_store(tmp_path, kube, s3_bucket, capsys):
    path = write_config(tmp_path, CLUSTER | {"store": f"s3://{s3_bucket}/sweep"})
    _running(kube, path)
    RunStore(open_store(f"s3://{s3_bucket}/sweep"), "baseline-paper-s0").save_checkpoint(200, b"state")
    ClusterCommands().status(config=str(path))
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["EXPERIMENT", "SEED", "PHASE", "RESTARTS", "STEP", "AGE", "JOB"]
    assert len(out) == 4
    assert re.match(r"baseline\s+0\s+Running\s+1\s+200\s+3h0m\s+clel-baseline-paper-s0-[0-9a-f]{12}$", out[1])
    assert re.match(r"baseline\s+1\s+Succeeded\s+0\s+-\s+3h0m\s+clel-baseline-paper-s1-", out[2])
    assert re.match(r"baseline\s+2\s+Pending \(ImagePullBackOff\)\s+0\s+-\s+3h0m\s+clel-baseline-paper-s2-", out[3])
    assert {r.query["labelSelector"] for r in kube.sent("GET", "jobs") + kube.sent("GET", "pods")} == {SELECTOR}


def test_status_of_one_experiment_and_an_unreachable_store(tmp_path, kube, s3_endpoint, capsys):
    path = write_config(tmp_path, CLUSTER | {"store": "s3://no-such-bucket/x"})
    _running(kube, path)
    ClusterCommands().status(exp="baseline", config=str(path))
    captured = capsys.readouterr()
    assert captured.err.startswith("note: checkpoint steps unknown: store s3://no-such-bucket/x")
    assert "bucket 'no-such-bucket' does not exist" in captured.err and len(captured.err.splitlines()) == 1
    assert re.search(r"^baseline\s+0\s+Running\s+1\s+-\s", captured.out, re.M)
    assert kube.sent("GET", "jobs")[0].query["labelSelector"] == f"{SELECTOR},clel/experiment=baseline"
    ClusterCommands().status(exp="plain_ebm", config=str(path))
    assert "no Jobs match" in capsys.readouterr().out


def test_logs_select_by_label_and_show_the_newest_pod(tmp_path, kube, capsys):
    path = write_config(tmp_path, CLUSTER)
    _running(kube, path)
    ClusterCommands().logs(exp="baseline", config=str(path))
    out = capsys.readouterr().out
    assert "resumed baseline-paper-s0 at step 200" in out and "preempted" not in out and "done" in out
    assert out.count("==> clel-baseline-paper-s") == 3
    log_paths = [r.path for r in kube.sent("GET", "log")]
    assert log_paths == [f"/api/v1/namespaces/clel/pods/{pod}/log" for pod in ("b0-new", "b1", "b2")]
    assert {r.query["container"] for r in kube.sent("GET", "log")} == {"worker"}
    ClusterCommands().logs(exp="baseline", seed=1, config=str(path))
    assert kube.sent("GET", "pods")[-1].query["labelSelector"] == f"{SELECTOR},clel/experiment=baseline,clel/seed=1"
    assert capsys.readouterr().out == "done\n"


def test_logs_follow_moves_on_to_the_replacement_pod(tmp_path, kube, capsys):
    path = write_config(tmp_path, CLUSTER)
    jobs = _running(kube, path)
    job0 = jobs[0]

    def preempt_then_finish(pod: str) -> None:
        if pod == "b0-new":  # while following: the pod is evicted and replaced
            kube.add_pod(job0, "b0-third", "Running", log="resumed baseline-paper-s0 at step 300\nfinished\n")
        else:
            job0["status"] = k8s.to_dict(
                client.V1JobStatus(conditions=[client.V1JobCondition(type="Complete", status="True")])
            )

    kube.on_log = preempt_then_finish
    with pytest.raises(UserError, match="--follow follows one Job: add --seed"):
        ClusterCommands().logs(exp="baseline", follow=True, config=str(path))
    ClusterCommands().logs(exp="baseline", seed=0, follow=True, config=str(path))
    out = capsys.readouterr().out
    assert out.index("at step 200") < out.index("replacement pod b0-third") < out.index("at step 300")
    assert all(r.query["follow"].lower() == "true" for r in kube.sent("GET", "log"))


def test_logs_needs_an_experiment(tmp_path, kube):
    with pytest.raises(UserError, match="--exp NAME is required"):
        ClusterCommands().logs(config=str(write_config(tmp_path, CLUSTER)))


def test_cancel_deletes_by_label_with_background_propagation(tmp_path, kube, capsys):
    path = write_config(tmp_path, CLUSTER)
    ClusterCommands().submit(exp="baseline", config=str(path))
    ClusterCommands().submit(exp="mae", config=str(path))
    ClusterCommands().cancel(exp="mae", config=str(path))
    assert kube.sent("GET", "jobs")[-1].query["labelSelector"] == f"{SELECTOR},clel/experiment=mae"
    deletes = kube.sent("DELETE")
    assert len(deletes) == 3 and all(d.query["propagationPolicy"] == "Background" for d in deletes)
    assert sorted(job["metadata"]["labels"]["clel/experiment"] for job in kube.jobs.values()) == ["baseline"] * 3
    ClusterCommands().cancel(config=str(path))
    assert kube.sent("GET", "jobs")[-1].query["labelSelector"] == SELECTOR
    assert kube.jobs == {}
    assert capsys.readouterr().out.rstrip().endswith(f"3 Job(s) deleted ({SELECTOR}, namespace clel)")


# --- connecting ---------------------------------------------------------------------------------------


def test_missing_kubeconfig_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "nope"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(UserError, match="^no Kubernetes cluster configured") as err:
        k8s.connect()
    assert "\n" not in str(err.value)


def test_unreachable_cluster_exits_2_with_one_line(tmp_path):
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "gone", "cluster": {"server": "http://127.0.0.1:9"}}],
        "users": [{"name": "me", "user": {"token": "not-a-real-token"}}],
        "contexts": [{"name": "gone", "context": {"cluster": "gone", "user": "me"}}],
        "current-context": "gone",
    }
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(kubeconfig))
    result = run_cli(
        "status", "--config", str(write_config(tmp_path, CLUSTER)), env={"KUBECONFIG": str(tmp_path / "kubeconfig")}
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "error: cannot reach the Kubernetes API at http://127.0.0.1:9 (Connection refused)"


# --- small pieces -------------------------------------------------------------------------------------


def test_age_and_table_formatting():
    created = datetime(2026, 1, 1, tzinfo=UTC)
    assert [age(created, created.timestamp() + s) for s in (5, 125, 3 * 3600 + 300, 2 * 86400 + 4 * 3600)] == [
        "5s",
        "2m",
        "3h5m",
        "2d4h",
    ]
    assert format_table(["A", "BB"], [["xyz", "1"]]) == "A    BB\nxyz  1"
