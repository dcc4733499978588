"""`logs`: the worker log of a sweep's Jobs, the newest pod of each, or one Job's log followed to its end."""

import sys
import time
from typing import TYPE_CHECKING

from runner.cluster.names import job_of
from runner.cluster.status import job_finished, newest_pod

if TYPE_CHECKING:
    from kubernetes.client import V1Job, V1Pod

    from runner.cluster.api import KubeApi

FOLLOW_POLL_S = 2.0


def write(text: str) -> None:
    """Write log text to stdout as it arrives."""
    sys.stdout.write(text)
    sys.stdout.flush()


def _started(pod: "V1Pod") -> bool:
    return pod.status is not None and pod.status.phase in ("Running", "Succeeded", "Failed")


def print_logs(api: "KubeApi", jobs: list["V1Job"], label_selector: str) -> None:
    """The log of each Job's newest pod, with a header per Job when there are several."""
    pods = api.list_pods(label_selector)
    for job in jobs:
        pod = newest_pod([p for p in pods if job_of(p) == job.metadata.name])
        if len(jobs) > 1:
            print(f"==> {job.metadata.name} <==")
        if pod is None:
            print(f"{job.metadata.name}: no pod yet")
            continue
        problem = api.stream_log(pod.metadata.name, write)
        if problem:
            print(f"{pod.metadata.name}: {problem}")


def follow_job(api: "KubeApi", job: "V1Job", label_selector: str, poll_s: float | None = None) -> None:
    """Stream the Job's log until it finishes, moving on to each replacement pod (after a preemption)."""
    name = job.metadata.name
    streamed: set[str] = set()
    while True:
        pods = [pod for pod in api.list_pods(label_selector) if job_of(pod) == name]
        pod = newest_pod(pods)
        if pod is not None and pod.metadata.name not in streamed and _started(pod):
            if streamed:
                print(f"==> {name}: replacement pod {pod.metadata.name} <==", flush=True)
            streamed.add(pod.metadata.name)
            problem = api.stream_log(pod.metadata.name, write, follow=True)
            if problem:
                print(f"{pod.metadata.name}: {problem}", flush=True)
            continue
        current = api.read_job(name)
        if current is None or job_finished(current):
            return
        time.sleep(FOLLOW_POLL_S if poll_s is None else poll_s)
