"""The Kubernetes API side: a client for the current kube context, and `KubeApi`, the requests this runner makes.

API and connection errors become one-line UserErrors.
"""

import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import urllib3
import yaml
from kubernetes import client
from kubernetes import config as kubeconfig
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from runner.cluster.names import CONTAINER
from runner.errors import UserError

TIMEOUT = (10, 60)  # (connect, read) seconds for one API request


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
