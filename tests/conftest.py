"""Fixtures of every tier (tests/unit, tests/integration, tests/e2e): the embedded digits, the repository's
experiments.toml, one torch thread, a real S3-compatible HTTP endpoint on loopback (moto's server mode), the fake
Kubernetes API server, and stores holding a real finished tiny run. Helpers live in tests/support."""

import os
from pathlib import Path

import boto3
import pytest
import torch
from moto.server import ThreadedMotoServer

from runner.config import ExperimentsFile
from runner.data import ImageData, load_digits
from tests.support import ROOT
from tests.support.seaweedfs import SeaweedServer

# No test may reach a real cloud or read the user's AWS config.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull


S3_SERVERS = ("moto", "seaweedfs")


@pytest.fixture(scope="session")
def moto_server():
    """moto's S3 server on 127.0.0.1 (random port) for the whole session; yields its endpoint URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def seaweedfs_server(tmp_path_factory):
    """SeaweedFS (`weed mini`, tests/support/seaweedfs.py) on 127.0.0.1 for the whole session, with the test
    credentials (testing / testing); skipped with the reason when it cannot start here."""
    seaweed = SeaweedServer(tmp_path_factory.mktemp("seaweedfs"), "testing", "testing")
    try:
        endpoint = seaweed.start()
    except RuntimeError as err:
        pytest.skip(f"SeaweedFS cannot start here: {err}")
    yield endpoint
    seaweed.stop()


@pytest.fixture(scope="session", params=S3_SERVERS)
def s3_server(request):
    """A real S3-compatible HTTP endpoint on loopback, once for each server: moto's server mode, and SeaweedFS,
    which checks request signatures as a real store does; yields the endpoint URL."""
    return request.getfixturevalue(f"{request.param}_server")


def new_bucket(endpoint: str, name: str):
    """Create an empty bucket; returns a function that empties and removes it."""
    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket=name)

    def remove() -> None:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
            for item in page.get("Contents", []):
                client.delete_object(Bucket=name, Key=item["Key"])
        client.delete_bucket(Bucket=name)

    return remove


def bucket_name(request) -> str:
    name = "test-" + request.node.name.lower().replace("_", "-").replace("[", "-").replace("]", "")[:40]
    return name.rstrip("-")


@pytest.fixture
def s3_endpoint(s3_server, monkeypatch):
    """AWS_ENDPOINT_URL_S3 pointing at the loopback server (boto3 reads it) for one test."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server)
    return s3_server


@pytest.fixture
def s3_bucket(s3_endpoint, request):
    """A fresh, empty bucket on the loopback server; yields its name."""
    name = bucket_name(request)
    remove = new_bucket(s3_endpoint, name)
    yield name
    remove()


@pytest.fixture(scope="session")
def digits() -> ImageData:
    """The embedded digits at the tiny profile's 16 x 16."""
    return load_digits(16)


@pytest.fixture(scope="session")
def experiments() -> ExperimentsFile:
    """The repository's experiments.toml."""
    return ExperimentsFile(ROOT / "experiments.toml")


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread_per_process():
    """Torch on one thread for the whole session, whichever tests run: the tiers' small tensors gain nothing from
    more, and an in-process run (runtime.threads = 1 in tiny_cfg's settings) would set one anyway, for the tests
    after it only."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def one_thread():
    """One torch thread for the test (deterministic float reductions), restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def kube(monkeypatch, tmp_path):
    """The fake Kubernetes API server (tests/support/kube.py) behind a kubeconfig in tmp_path: the runner's own
    connect() reaches it through the official client."""
    from tests.support.kube import install  # the kubernetes client only for the tests that use it

    return install(monkeypatch, tmp_path)


@pytest.fixture(scope="session")
def finished_store(tmp_path_factory) -> Path:
    """A local store with a real finished two-iteration tiny baseline run of the repository's experiments.toml (and
    a stray file), made once in-process; tests copy it (it must stay as it is)."""
    from tests.support.cli import TINY_RUN_ID, make_finished_store

    store = make_finished_store(tmp_path_factory.mktemp("finished") / "runs")
    assert (store / TINY_RUN_ID / "result.json").is_file()
    return store


@pytest.fixture(scope="session")
def minimal_finished_store(tmp_path_factory) -> Path:
    """finished_store's run made from the bad-input tests' own minimal experiments.toml
    (tests/support/bad_config.py)."""
    from tests.support.bad_config import MINIMAL_CONFIG, TINY_RUN_ID
    from tests.support.cli import make_finished_store

    store = make_finished_store(tmp_path_factory.mktemp("minimal-finished") / "runs", MINIMAL_CONFIG)
    assert (store / TINY_RUN_ID / "result.json").is_file()
    return store
