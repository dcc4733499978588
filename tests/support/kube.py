"""The cluster tests' Kubernetes: experiments.toml with a chosen [cluster] table, and the one fake API server.

The API server is faked below the official client: `FakeKubeServer` stands in for urllib3's PoolManager inside
every RESTClientObject the process builds (`install`), behind a kubeconfig that points at https://kube.test:6443.
So the runner's own connect() and the client's models, serialisation and REST layer run unchanged, no runner
module is patched, and every request is recorded (for the tests that must send none). A Job created (a dry run
included), replaced (PUT) or patched (PATCH) must pass what a real API server and Kueue's webhook check
(tests/support/kube_rules.py), else it is refused with their Status (422 Invalid, Kueue's 403).
"""

import io
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import urllib3
from kubernetes import client
from kubernetes.client import rest
from kubernetes.config import kube_config

from runner.cluster import load_cluster
from runner.cluster.config import ClusterConfig
from runner.cluster.render import render_jobs, to_dict
from runner.config import ExperimentsFile
from tests.support import ROOT, kube_rules

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
    text = re.sub(r"(?m)^\[cluster\]\n(?:(?!\[).*\n?)*", "", (ROOT / "experiments.toml").read_text())
    if cluster is not None:
        text += "\n[cluster]\n" + "".join(f"{key} = {toml_value(value)}\n" for key, value in cluster.items())
    path = tmp_path / "experiments.toml"
    path.write_text(text + extra)
    return path


def rendered(path: Path, exp: str | None = None) -> tuple[ExperimentsFile, ClusterConfig, list[client.V1Job]]:
    experiments = ExperimentsFile(path)
    cluster = load_cluster(experiments)
    return experiments, cluster, render_jobs(experiments, cluster, exp)


# --- the fake API server below the official client ---------------------------------------------------

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: https://kube.test:6443
    insecure-skip-tls-verify: true
contexts:
- name: fake
  context: {cluster: fake, user: fake, namespace: clel}
current-context: fake
users:
- name: fake
  user: {token: fake-token}
"""


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    content_type: str = ""


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
        content_type = {k.lower(): v for k, v in (headers or {}).items()}.get("content-type", "")
        self.requests.append(Request(method, parts.path, query, json.loads(body) if body else None, content_type))
        status, payload, content_type = self._route(method, parts.path, query, self.requests[-1].body)
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return urllib3.HTTPResponse(
            body=io.BytesIO(data),
            status=status,
            reason=REASONS.get(status, "Error"),
            headers={"Content-Type": content_type},
            preload_content=preload_content,
        )

    # seeding the world with the client's models
    def add_job(self, job: client.V1Job, created: datetime | None = None, **status: Any) -> dict[str, Any]:
        data = to_dict(job)
        data["metadata"]["creationTimestamp"] = (created or datetime.now(UTC)).isoformat()
        if status:
            data["status"] = to_dict(client.V1JobStatus(**status))
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
        self.pods[name] = to_dict(pod)
        self.logs[name] = log

    def sent(self, method: str, kind: str = "") -> list[Request]:
        return [r for r in self.requests if r.method == method and r.path.rstrip("/").endswith(kind)]

    # the API
    def _status(self, code: int, reason: str, message: str) -> tuple[int, Any, str]:
        body = client.V1Status(api_version="v1", kind="Status", status="Failure", reason=reason, message=message)
        return code, to_dict(body) | {"code": code}, "application/json"

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
            return 200, to_dict(model(api_version=api_version, kind=kind_name, items=items)), "application/json"
        if method == "GET":
            if name not in store:
                return self._status(404, "NotFound", f'{kind}.batch "{name}" not found')
            return 200, store[name], "application/json"
        if method == "POST":
            if kind == "jobs" and (refused := self._refused(namespace, None, body)) is not None:
                return refused
            name = body["metadata"]["name"]
            if name in store:
                return self._status(409, "AlreadyExists", f'jobs.batch "{name}" already exists')
            created = body | {"metadata": body["metadata"] | {"creationTimestamp": datetime.now(UTC).isoformat()}}
            if query.get("dryRun") != "All":
                store[name] = created
            return 201, created, "application/json"
        if method in ("PUT", "PATCH") and kind == "jobs" and name is not None:
            return self._update(method, namespace, name, query, body)
        if method == "DELETE":
            if name not in store:
                return self._status(404, "NotFound", f'jobs.batch "{name}" not found')
            if query.get("dryRun") != "All":
                del store[name]
            body = client.V1Status(api_version="v1", kind="Status", status="Success")
            return 200, to_dict(body), "application/json"
        raise AssertionError(f"unexpected request {method} {path}")

    # what a real API server and Kueue's webhook refuse (tests/support/kube_rules.py)
    def _refused(self, namespace: str, old: dict[str, Any] | None, new: Any) -> tuple[int, Any, str] | None:
        """The answer to a Job that a real server refuses (400, 422, or Kueue's 403), or None when it is valid."""
        if not isinstance(new, dict) or not isinstance(new.get("metadata"), dict):
            return self._status(400, "BadRequest", "the body of the request is not a Job")
        if new["metadata"].get("namespace", namespace) != namespace:
            message = "the namespace of the provided object does not match the namespace sent on the request"
            return self._status(400, "BadRequest", message)
        if old is None:
            errors, kueue = kube_rules.job_errors(new), kube_rules.kueue_create_errors(new)
        else:
            errors, kueue = kube_rules.update_errors(old, new), kube_rules.kueue_update_errors(old, new)
        name = new["metadata"].get("name") or ""
        if errors:
            return 422, kube_rules.invalid(name, errors), "application/json"
        if kueue:
            return 403, kube_rules.denied(kueue), "application/json"
        return None

    def _update(self, method: str, namespace: str, name: str, query: dict[str, str], body: Any):
        """PUT (the whole Job) or PATCH (merge, strategic merge taken as merge, or JSON patch) of a stored Job."""
        if name not in self.jobs:
            return self._status(404, "NotFound", f'jobs.batch "{name}" not found')
        old = self.jobs[name]
        if method == "PUT":
            if isinstance(body, dict) and (body.get("metadata") or {}).get("name") != name:
                given = (body.get("metadata") or {}).get("name")
                message = f"the name of the object ({given}) does not match the name on the URL ({name})"
                return self._status(400, "BadRequest", message)
            new = body
        else:
            content_type = self.requests[-1].content_type.split(";")[0].strip()
            try:
                if content_type == "application/json-patch+json":
                    new = kube_rules.json_patch(old, body)
                elif content_type in PATCH_TYPES[1:]:
                    new = kube_rules.merge_patch(old, body)
                else:
                    message = "the body of the request was in an unknown format - accepted media types include: "
                    return self._status(415, "UnsupportedMediaType", message + ", ".join(PATCH_TYPES))
            except (ValueError, KeyError, IndexError, TypeError) as err:
                message = f"the server rejected our request due to an error in our request: {err}"
                return self._status(422, "Invalid", message)
        if isinstance(new, dict) and isinstance(new.get("metadata"), dict):
            # what a client cannot set: kept from the stored Job, as a server does
            new = new | {"metadata": new["metadata"] | {"creationTimestamp": old["metadata"].get("creationTimestamp")}}
            new = {k: v for k, v in new.items() if k != "status"} | (
                {"status": old["status"]} if "status" in old else {}
            )
        if (refused := self._refused(namespace, old, new)) is not None:
            return refused
        if query.get("dryRun") != "All":
            self.jobs[name] = new
        return 200, new, "application/json"


REASONS = {200: "OK", 201: "Created", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 409: "Conflict"}
REASONS |= {415: "Unsupported Media Type", 422: "Unprocessable Entity"}
PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)


def install(monkeypatch, directory: Path) -> FakeKubeServer:
    """KUBECONFIG (written in `directory`) at the fake cluster, and every new RESTClientObject's pool manager
    replaced by one new FakeKubeServer, which is returned."""
    server = FakeKubeServer()
    path = Path(directory) / "kubeconfig"
    path.write_text(KUBECONFIG)
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(path))  # read from KUBECONFIG at import
    original = rest.RESTClientObject.__init__

    def init(self, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.pool_manager = server

    monkeypatch.setattr(rest.RESTClientObject, "__init__", init)
    return server


def seed_world(kube: FakeKubeServer, path: Path) -> list[dict[str, Any]]:
    """baseline s0 preempted once and running again, s1 done, s2 waiting for its image."""
    jobs = [kube.add_job(job, datetime.now(UTC) - timedelta(hours=3)) for job in rendered(path, "baseline")[2]]
    kube.add_pod(jobs[0], "b0-old", "Failed", minutes_ago=90, log="step 100\npreempted: SIGTERM\n")
    kube.add_pod(jobs[0], "b0-new", "Running", minutes_ago=30, log="resumed baseline-paper-s0 at step 200\n")
    kube.jobs[jobs[1]["metadata"]["name"]]["status"] = to_dict(
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
