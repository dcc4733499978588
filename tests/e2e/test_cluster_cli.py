"""The cluster commands through `python -m runner`: a bad [cluster] is one line and exit 2, render prints no
credential, an absent or empty queue_name renders the same Jobs, an unreachable API server is one line, and the
CLI starts without importing the kubernetes client."""

import subprocess
import sys

import pytest
import yaml

from runner.config import ExperimentsFile
from tests.support import ROOT
from tests.support.kube import CLUSTER, FULL_CLUSTER, write_config
from tests.support.runs import run_cli

FAKE_KEY_ID = "AKIAFAKEKEYID0123456789"
FAKE_SECRET = "fake-secret-Zq9+/wXYZ-never-in-yaml"
JOBS = len(ExperimentsFile().experiments) * len(ExperimentsFile().sweep.seeds)  # every experiment x [sweep] seeds
MANIFESTS = sorted((ROOT / "manifests").glob("*.yaml"))


@pytest.mark.slow  # a python process each: the real entry point on a bad [cluster]
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


@pytest.mark.slow  # starts python -m runner
def test_no_credential_value_appears_in_the_rendered_yaml(tmp_path):
    fake = {"AWS_ACCESS_KEY_ID": FAKE_KEY_ID, "AWS_SECRET_ACCESS_KEY": FAKE_SECRET, "AWS_SESSION_TOKEN": FAKE_SECRET}
    result = run_cli("render", "--config", str(write_config(tmp_path, FULL_CLUSTER)), env=fake)
    assert result.returncode == 0, result.stderr
    assert FAKE_KEY_ID not in result.stdout and FAKE_SECRET not in result.stdout
    docs = list(yaml.safe_load_all(result.stdout))
    assert len(docs) == JOBS and all(doc["kind"] == "Job" for doc in docs)
    for doc in docs:
        env = {item["name"]: item for item in doc["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} & set(env)
        assert not any("valueFrom" in item for item in env.values())  # no secret is an environment variable
        assert env["AWS_SHARED_CREDENTIALS_FILE"]["value"] == "/var/run/secrets/clel/s3/credentials"
        pod = doc["spec"]["template"]["spec"]
        assert {
            "name": "s3-credentials",
            "secret": {
                "secretName": "clel-s3",
                "items": [{"key": "credentials", "path": "credentials"}],
                "defaultMode": 0o440,
            },
        } in pod["volumes"]
        mounts = pod["containers"][0]["volumeMounts"]
        assert {"name": "s3-credentials", "mountPath": "/var/run/secrets/clel/s3", "readOnly": True} in mounts
    for path in MANIFESTS:
        assert FAKE_SECRET not in path.read_text()


@pytest.mark.slow  # starts python -m runner
def test_without_a_queue_name_rendering_is_unchanged(tmp_path):
    (tmp_path / "empty").mkdir()
    absent = run_cli("render", "--config", str(write_config(tmp_path, CLUSTER)))
    empty = run_cli("render", "--config", str(write_config(tmp_path / "empty", CLUSTER | {"queue_name": ""})))
    assert absent.returncode == empty.returncode == 0, absent.stderr + empty.stderr
    assert absent.stdout == empty.stdout and absent.stdout.count("kind: Job") == JOBS
    assert "suspend" not in absent.stdout and "kueue" not in absent.stdout


@pytest.mark.slow  # starts python -m runner
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


@pytest.mark.slow  # starts a python process
def test_the_cli_starts_without_the_kubernetes_client():
    code = "import sys, runner.cli.commands; print(sorted(m for m in sys.modules if m.split('.')[0] == 'kubernetes'))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
