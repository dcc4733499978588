"""`status`: each Job's phase, restarts, age and the progress of its run, as a table.

Works on the client's models (V1Job, V1Pod) by attribute only, so this module needs no kubernetes import.
"""

import time
from datetime import datetime
from typing import TYPE_CHECKING

from runner.cluster.names import EXPERIMENT_KEY, SEED_KEY, job_of

if TYPE_CHECKING:
    from kubernetes.client import V1Job, V1JobCondition, V1Pod

HEADER = ["EXPERIMENT", "SEED", "PHASE", "RESTARTS", "STEP", "AGE", "JOB"]


def job_condition(job: "V1Job", kind: str) -> "V1JobCondition | None":
    """The Job's condition of this type if it is True, else None."""
    for condition in (job.status and job.status.conditions) or []:
        if condition.type == kind and condition.status == "True":
            return condition
    return None


def job_finished(job: "V1Job") -> bool:
    """Whether the Job has completed or failed for good."""
    return job_condition(job, "Complete") is not None or job_condition(job, "Failed") is not None


def newest_pod(pods: list["V1Pod"]) -> "V1Pod | None":
    """The most recently created pod."""
    return max(pods, key=lambda pod: pod.metadata.creation_timestamp, default=None)


def sort_key(job: "V1Job") -> tuple[str, int, str]:
    """Experiment, then seed (as a number), then name."""
    labels = job.metadata.labels or {}
    seed = labels.get(SEED_KEY, "")
    return labels.get(EXPERIMENT_KEY, ""), int(seed) if seed.isdigit() else -1, job.metadata.name


def _waiting_reason(pod: "V1Pod") -> str | None:
    for status in (pod.status and pod.status.container_statuses) or []:
        if status.state and status.state.waiting and status.state.waiting.reason:
            return status.state.waiting.reason
    return None


def job_phase(job: "V1Job", pods: list["V1Pod"]) -> str:
    """Succeeded, Failed (reason), Suspended, or the newest pod's phase (with its waiting reason)."""
    if job_condition(job, "Complete"):
        return "Succeeded"
    failed = job_condition(job, "Failed")
    if failed:
        return f"Failed ({failed.reason})" if failed.reason else "Failed"
    if job_condition(job, "Suspended"):
        return "Suspended"
    pod = newest_pod(pods)
    if pod is None or pod.status is None or not pod.status.phase:
        return "Pending"
    reason = _waiting_reason(pod)
    return f"{pod.status.phase} ({reason})" if reason else pod.status.phase


def restarts(job: "V1Job", pods: list["V1Pod"]) -> int:
    """How often the run was started again: replacement pods, preempted ones included."""
    failed = (job.status and job.status.failed) or 0
    return max(len(pods) - 1, failed, 0)


def age(created: datetime, now: float | None = None) -> str:
    """Compact age of a timestamp: 45s, 12m, 3h5m, 2d4h."""
    seconds = max(int((time.time() if now is None else now) - created.timestamp()), 0)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600}h"


def format_table(header: list[str], rows: list[list[str]]) -> str:
    """Left-aligned columns separated by two spaces."""
    table = [header, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in table)


def status_table(jobs: list["V1Job"], pods: list["V1Pod"], steps: dict[str, int | None]) -> str:
    """The table `status` prints: one row per Job, sorted by experiment and seed."""
    rows = []
    for job in sorted(jobs, key=sort_key):
        mine = [pod for pod in pods if job_of(pod) == job.metadata.name]
        labels = job.metadata.labels or {}
        step = steps.get(job.metadata.name)
        rows.append(
            [
                labels.get(EXPERIMENT_KEY, "?"),
                labels.get(SEED_KEY, "?"),
                job_phase(job, mine),
                str(restarts(job, mine)),
                "-" if step is None else str(step),
                age(job.metadata.creation_timestamp) if job.metadata.creation_timestamp else "-",
                job.metadata.name,
            ]
        )
    return format_table(HEADER, rows)
