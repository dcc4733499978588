"""A minimal stand-in for the Kubernetes API: the kubernetes client's REST layer talks to it, and it records
every request (for tests that must send none).

Unlike tests/kube_support.py's FakeKubeServer (which stands in for connect()), it takes the place of urllib3's
PoolManager inside the client's RESTClientObject; here every RESTClientObject the process builds gets it, so
the runner's own connect code (a kubeconfig that points at https://kube.test:6443) is exercised unchanged and
no runner module is patched.
"""

import io
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import urllib3
from kube_support import Request
from kubernetes.client import rest
from kubernetes.config import kube_config

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


class FakeKube:
    """Answers every request with an empty list (GET), or the object sent back (POST, PUT, PATCH, DELETE)."""

    def __init__(self) -> None:
        self.requests: list[Request] = []

    def request(self, method, url, fields=None, body=None, preload_content=True, timeout=None, headers=None, **_):
        parts = urlsplit(url)
        payload = json.loads(body) if body else None
        self.requests.append(Request(method, parts.path, dict(parse_qsl(parts.query)), payload))
        if method == "GET":
            status, data = 200, {"apiVersion": "v1", "kind": "List", "metadata": {}, "items": []}
        else:
            status, data = (201 if method == "POST" else 200), payload or {}
        return urllib3.HTTPResponse(
            body=io.BytesIO(json.dumps(data).encode()),
            status=status,
            reason="OK",
            headers={"Content-Type": "application/json"},
            preload_content=preload_content,
        )


def install(monkeypatch, directory: Path) -> FakeKube:
    """KUBECONFIG at a fake cluster, and every new RESTClientObject's pool manager replaced by a FakeKube."""
    server = FakeKube()
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
