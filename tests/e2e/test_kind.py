"""The cluster path end to end on a kind cluster (`make kind-test`, marker `kind`).

Creates or reuses the kind cluster $CLEL_KIND_CLUSTER (default clel-kind), builds and loads the CPU image,
deploys manifests/ with an in-cluster MinIO, submits the tiny profile of two experiments, evicts one pod
mid-run through the Eviction API, and checks that its Job completes from the checkpoint and that the store
holds a summarize-ready result for each run. Skips with one line where kind, kubectl or a Docker engine is
missing, and unless selected with `-m kind`. A cluster the test created is deleted afterwards unless
CLEL_KIND_KEEP=1.
"""

import base64
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from kubernetes import client, utils
from kubernetes import config as kubeconfig
from kubernetes.client.exceptions import ApiException

from tests.support import ROOT

pytestmark = pytest.mark.kind

CLUSTER_NAME = os.environ.get("CLEL_KIND_CLUSTER", "clel-kind")
IMAGE = "clel-runner:kind-test"
NAMESPACE = "clel"
BUCKET = "clel-runs"
SECRET = "clel-s3"
EXPERIMENTS = ("baseline", "plain_ebm")
EVICTED = "baseline"
ITERATIONS = 400
CHECKPOINT_EVERY = 25


def missing_tools() -> str | None:
    """Why this machine cannot run the kind test, or None."""
    for tool in ("kind", "kubectl", "docker"):
        if shutil.which(tool) is None:
            return f"{tool} not found on PATH (the kind test needs kind, kubectl and a Docker engine)"
    if subprocess.run(["docker", "info"], capture_output=True, timeout=60).returncode != 0:
        return "no Docker engine answers `docker info` (the kind test needs one)"
    return None


def sh(*args: str, timeout: float = 600, env: dict[str, str] | None = None) -> str:
    """Run a command; its stdout, or a test failure with its stderr."""
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)
    assert done.returncode == 0, f"{' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}"
    return done.stdout


def wait_for(what: str, check: Callable[[], Any], timeout_s: float, poll_s: float = 2) -> Any:
    """Poll until check() returns something truthy; fail naming `what` after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(poll_s)
    pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")


@dataclass
class Kind:
    api: client.ApiClient
    kubeconfig: Path
    endpoint: str  # MinIO, port-forwarded to this machine
    access_key: str
    secret_key: str

    def env(self) -> dict[str, str]:
        """Environment for the CLI and boto3 on this machine: this cluster, this MinIO."""
        return os.environ | {
            "KUBECONFIG": str(self.kubeconfig),
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "CLEL_S3_ADDRESSING": "path",
        }

    def s3(self):
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
        )


def _create(api: client.ApiClient, doc: dict[str, Any]) -> None:
    try:
        utils.create_from_dict(api, doc)
    except utils.FailToCreateError as err:
        if any(exc.status != 409 for exc in err.api_exceptions):
            raise


def _credentials_file(access: str, secret: str) -> str:
    """The Secret's `credentials` key: an AWS shared-credentials file, which the Jobs mount."""
    return f"[default]\naws_access_key_id = {access}\naws_secret_access_key = {secret}\n"


def _s3_secret(api: client.ApiClient) -> tuple[str, str]:
    """The clel-s3 Secret's credentials, created with random values if absent (never from a file)."""
    core = client.CoreV1Api(api)
    try:
        data = core.read_namespaced_secret(SECRET, NAMESPACE).data
        keys = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
        access, secret = (base64.b64decode(data[key]).decode() for key in keys)
        if "credentials" not in data:  # made before the Jobs read a credentials file
            patch = {"stringData": {"credentials": _credentials_file(access, secret)}}
            core.patch_namespaced_secret(SECRET, NAMESPACE, patch)
        return access, secret
    except ApiException as err:
        if err.status != 404:
            raise
    access, secret = f"clel{secrets.token_hex(6)}", secrets.token_urlsafe(24)
    body = client.V1Secret(
        metadata=client.V1ObjectMeta(name=SECRET, namespace=NAMESPACE),
        string_data={
            "AWS_ACCESS_KEY_ID": access,
            "AWS_SECRET_ACCESS_KEY": secret,
            "credentials": _credentials_file(access, secret),
        },
    )
    core.create_namespaced_secret(NAMESPACE, body)
    return access, secret


def _deploy(api: client.ApiClient) -> tuple[str, str]:
    for name in ("namespace.yaml", "serviceaccount.yaml"):
        for doc in yaml.safe_load_all((ROOT / "manifests" / name).read_text()):
            _create(api, doc)
    credentials = _s3_secret(api)
    for doc in yaml.safe_load_all((ROOT / "manifests" / "minio.yaml").read_text()):
        _create(api, doc)
    apps, batch = client.AppsV1Api(api), client.BatchV1Api(api)
    wait_for("MinIO", lambda: (apps.read_namespaced_deployment("minio", NAMESPACE).status.ready_replicas or 0) > 0, 300)
    wait_for("the bucket Job", lambda: batch.read_namespaced_job("minio-bucket", NAMESPACE).status.succeeded, 300)
    return credentials


def _port_forward(kubeconfig_path: Path) -> tuple[subprocess.Popen, str]:
    """kubectl port-forward to the MinIO Service on a free local port; (process, endpoint URL)."""
    command = ["kubectl", "--kubeconfig", str(kubeconfig_path), "-n", NAMESPACE, "port-forward", "svc/minio", ":9000"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    found = re.search(r"127\.0\.0\.1:(\d+)", process.stdout.readline())
    if not found:
        process.terminate()
        pytest.fail(f"kubectl port-forward to MinIO failed: {process.stderr.read()[-500:]}")
    threading.Thread(target=lambda: process.stdout.read(), daemon=True).start()  # keep its pipe drained
    return process, f"http://127.0.0.1:{found.group(1)}"


@pytest.fixture(scope="module")
def kind(request, tmp_path_factory) -> Iterator[Kind]:
    """A kind cluster with the CPU image loaded, the namespace, service account, Secret and MinIO."""
    reason = missing_tools()
    if reason:
        pytest.skip(reason)
    if "kind" not in (request.config.getoption("markexpr") or "") and os.environ.get("CLEL_KIND_TEST") != "1":
        pytest.skip("the kind test runs with `make kind-test` (pytest -m kind) or CLEL_KIND_TEST=1")
    created = CLUSTER_NAME not in sh("kind", "get", "clusters").split()
    if created:
        sh("kind", "create", "cluster", "--name", CLUSTER_NAME, "--wait", "180s", timeout=900)
    try:
        path = tmp_path_factory.mktemp("kind") / "kubeconfig"
        path.write_text(sh("kind", "get", "kubeconfig", "--name", CLUSTER_NAME))
        sh("docker", "build", "--build-arg", "VARIANT=cpu", "-t", IMAGE, str(ROOT), timeout=3600)
        sh("kind", "load", "docker-image", IMAGE, "--name", CLUSTER_NAME, timeout=900)
        api = kubeconfig.new_client_from_config(config_file=str(path))
        access_key, secret_key = _deploy(api)
        forward, endpoint = _port_forward(path)
        try:
            yield Kind(api, path, endpoint, access_key, secret_key)
        finally:
            forward.terminate()
            forward.wait(30)
    finally:
        if created and os.environ.get("CLEL_KIND_KEEP") != "1":
            subprocess.run(["kind", "delete", "cluster", "--name", CLUSTER_NAME], capture_output=True, timeout=300)


def write_kind_config(tmp_path: Path, sweep: str, prefix: str) -> Path:
    """The repository's experiments.toml with a [cluster] table for kind: tiny profile, CPU, MinIO."""
    text = re.sub(r"(?m)^\[cluster\]\n(?:(?!\[).*\n?)*", "", (ROOT / "experiments.toml").read_text())
    overrides = [
        f"train.iterations={ITERATIONS}",
        f"runtime.checkpoint_every={CHECKPOINT_EVERY}",
        "eval.fid_samples=200",
        "eval.fid_sgld_passes=1",
    ]
    text += f"""
[cluster]
image = "{IMAGE}"
namespace = "{NAMESPACE}"
store = "s3://{BUCKET}/{prefix}"
s3_endpoint = "http://minio.{NAMESPACE}.svc.cluster.local:9000"
s3_addressing = "path"
credentials_secret = "{SECRET}"
profile = "tiny"
sweep = "{sweep}"
experiments = {json.dumps(list(EXPERIMENTS))}
seeds = [0]
overrides = {json.dumps(overrides)}
gpus = 0
cpu = "1"
memory = "3Gi"
shm_size = "256Mi"
download_data = false
tolerations = []
active_deadline_seconds = 3600
ttl_seconds_after_finished = 3600
backoff_limit = 2
termination_grace_period_seconds = 60
"""
    path = tmp_path / "experiments.toml"
    path.write_text(text)
    return path


def kind_run_id(config: str, experiment: str) -> str:
    """The run id of an experiment's seed-0 Job: the [cluster] overrides are its point (<exp>-tiny-g<tag>-s0)."""
    from runner.config import ExperimentsFile, parse_overrides

    experiments = ExperimentsFile(config)
    overrides = parse_overrides(experiments.cluster["overrides"])
    return experiments.resolve(experiment, "tiny", 0, overrides).run_id


def cli(kind: Kind, *args: str) -> str:
    """`python -m runner ARGS` against the kind cluster; its stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "runner", *args], capture_output=True, text=True, cwd=ROOT, env=kind.env(), timeout=300
    )
    assert done.returncode == 0, f"runner {' '.join(args)} exited {done.returncode}: {done.stderr}"
    return done.stdout


def latest_step(s3, prefix: str, run_id: str) -> int | None:
    """The step of the run's LATEST checkpoint pointer, or None."""
    try:
        body = s3.get_object(Bucket=BUCKET, Key=f"{prefix}/{run_id}/ckpt/LATEST")["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    return json.loads(body)["step"]


def running_pod(core: client.CoreV1Api, selector: str) -> str | None:
    """The name of a Running pod matching the selector, or None."""
    pods = core.list_namespaced_pod(NAMESPACE, label_selector=selector).items
    return next((pod.metadata.name for pod in pods if pod.status.phase == "Running"), None)


def finished_jobs(batch: client.BatchV1Api, sweep: str) -> list[client.V1Job] | None:
    """The sweep's Jobs once every one has completed or failed, else None."""
    jobs = batch.list_namespaced_job(NAMESPACE, label_selector=f"clel/sweep={sweep}").items

    def done(job: client.V1Job) -> bool:
        return any(c.type in ("Complete", "Failed") and c.status == "True" for c in job.status.conditions or [])

    return jobs if len(jobs) == len(EXPERIMENTS) and all(done(job) for job in jobs) else None


def pod_log(core: client.CoreV1Api, pod: str) -> str:
    response = core.read_namespaced_pod_log(pod, NAMESPACE, container="worker", _preload_content=False)
    return response.data.decode("utf-8", errors="replace")


def test_evicted_job_resumes_from_its_checkpoint_and_every_run_completes(kind, tmp_path):
    token = secrets.token_hex(3)
    sweep = prefix = f"kind-{token}"
    config = str(write_kind_config(tmp_path, sweep, prefix))
    assert "2 created" in cli(kind, "submit", "--config", config)
    assert "2 exists" in cli(kind, "submit", "--config", config)

    s3, core, batch = kind.s3(), client.CoreV1Api(kind.api), client.BatchV1Api(kind.api)
    run_id, selector = kind_run_id(config, EVICTED), f"clel/sweep={sweep},clel/experiment={EVICTED}"
    step = wait_for(
        f"a checkpoint of {run_id}",
        lambda: (latest_step(s3, prefix, run_id) or 0) >= 2 * CHECKPOINT_EVERY and latest_step(s3, prefix, run_id),
        900,
        poll_s=1,
    )
    assert step < ITERATIONS, "the run finished before it could be evicted: raise ITERATIONS"
    evicted = wait_for("a running pod to evict", lambda: running_pod(core, selector), 120)
    eviction = client.V1Eviction(metadata=client.V1ObjectMeta(name=evicted, namespace=NAMESPACE))
    core.create_namespaced_pod_eviction(evicted, NAMESPACE, eviction)

    jobs = wait_for("both Jobs to finish", lambda: finished_jobs(batch, sweep), 1800, poll_s=5)
    for job in jobs:
        conditions = {c.type for c in job.status.conditions if c.status == "True"}
        assert "Complete" in conditions and "Failed" not in conditions, (job.metadata.name, job.status)

    pods = core.list_namespaced_pod(NAMESPACE, label_selector=selector).items
    replacement = max(pods, key=lambda pod: pod.metadata.creation_timestamp).metadata.name
    assert replacement != evicted
    resumed = re.search(rf"resumed {run_id} at step (\d+)", pod_log(core, replacement))
    assert resumed and int(resumed.group(1)) >= step

    hashes = {job.metadata.labels["clel/experiment"]: job.metadata.annotations["clel/config-hash"] for job in jobs}
    for experiment in EXPERIMENTS:
        rid = kind_run_id(config, experiment)
        listing = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/{rid}/")
        keys = {item["Key"].removeprefix(f"{prefix}/{rid}/") for item in listing.get("Contents", [])}
        assert {"config.json", "result.json", "metrics.jsonl", "samples.png", "ckpt/LATEST"} <= keys, keys
        result = json.loads(s3.get_object(Bucket=BUCKET, Key=f"{prefix}/{rid}/result.json")["Body"].read())
        assert (result["experiment"], result["seed"], result["iterations"]) == (experiment, 0, ITERATIONS)
        assert result["config_hash"] == hashes[experiment]  # the worker resolved what the submitter rendered
        assert set(result["auroc"]) and "fid" in result

    status = cli(kind, "status", "--config", config)
    finished = rf"Succeeded\s+\d+\s+{ITERATIONS}/{ITERATIONS}\s+{ITERATIONS}\s"  # STEP (logged/total), CKPT
    assert len(re.findall(finished, status)) == len(EXPERIMENTS), status
    assert f"resumed {run_id}" in cli(kind, "logs", "--exp", EVICTED, "--config", config)
    assert f"{len(EXPERIMENTS)} Job(s) deleted" in cli(kind, "cancel", "--config", config)
    wait_for("the pods to go", lambda: not core.list_namespaced_pod(NAMESPACE, label_selector=selector).items, 300)
