"""Shared fixtures: the embedded digits, the repository's experiments.toml, one torch thread, and a real
S3-compatible HTTP endpoint on loopback (moto's server mode)."""

import os
from pathlib import Path

import boto3
import pytest
import torch
from moto.server import ThreadedMotoServer

from runner.config import ExperimentsFile
from runner.data import ImageData, load_digits

ROOT = Path(__file__).resolve().parents[1]

# No test may reach a real cloud or read the user's AWS config.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull


@pytest.fixture(scope="session")
def s3_server():
    """A moto S3 server on 127.0.0.1 (random port) for the whole session; yields its endpoint URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_endpoint(s3_server, monkeypatch):
    """AWS_ENDPOINT_URL_S3 pointing at the loopback server (boto3 reads it) for one test."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server)
    return s3_server


@pytest.fixture
def s3_bucket(s3_endpoint, request):
    """A fresh, empty bucket on the loopback server; yields its name."""
    name = "test-" + request.node.name.lower().replace("_", "-").replace("[", "-").replace("]", "")[:40]
    name = name.rstrip("-")
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket=name)
    yield name
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=name, Key=item["Key"])
    client.delete_bucket(Bucket=name)


@pytest.fixture(scope="session")
def digits() -> ImageData:
    """The embedded digits at the tiny profile's 16 x 16."""
    return load_digits(16)


@pytest.fixture(scope="session")
def experiments() -> ExperimentsFile:
    """The repository's experiments.toml."""
    return ExperimentsFile(ROOT / "experiments.toml")


@pytest.fixture
def one_thread():
    """One torch thread for the test (deterministic float reductions), restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def kube(monkeypatch):
    """A fake Kubernetes API server below the official client (tests/kube_support.py); `connect` returns it."""
    from kube_support import install_fake  # the kubernetes client only for the tests that use it

    return install_fake(monkeypatch)


@pytest.fixture(scope="session")
def finished_store(tmp_path_factory) -> Path:
    """A local store with a real finished two-iteration tiny baseline run (and a stray file), made once in-process;
    tests copy it (it must stay as it is)."""
    from cli_helpers import TINY_RUN_ID, tiny_local

    from runner.__main__ import main

    store = tmp_path_factory.mktemp("finished") / "runs"
    assert main(tiny_local(str(store))) == 0
    (store / "notes.txt").write_text("not a run\n")
    assert (store / TINY_RUN_ID / "result.json").is_file()
    return store
