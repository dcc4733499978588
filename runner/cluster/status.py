"""`status`: each Job's phase, restarts and age, with its run's progress from the store, as a table.

Works on the client's models (V1Job, V1Pod) by attribute only, so this module needs no kubernetes import.
"""

import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from runner.cluster.names import EXPERIMENT_KEY, KUEUE_QUEUE_LABEL, SEED_KEY, job_of
from runner.run.status import Progress, progress_cells
from runner.text import duration, text_table

if TYPE_CHECKING:
    from kubernetes.client import V1Job, V1JobCondition, V1Pod

HEADER = ["EXPERIMENT", "SEED", "PHASE", "RESTARTS", "STEP", "CKPT", "IT/S", "ETA", "LOSS", "RESULT", "AGE", "JOB"]


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
    """Succeeded, Failed (reason), Queued (Kueue has not admitted it), Suspended, or the newest pod's phase.

    A Job with a Kueue queue label is created suspended; Kueue admits it by unsuspending it, and may suspend it
    again (preemption by the queue): suspended means queued. Admitted without a pod yet is "Admitted".
    """
    if job_condition(job, "Complete"):
        return "Succeeded"
    failed = job_condition(job, "Failed")
    if failed:
        return f"Failed ({failed.reason})" if failed.reason else "Failed"
    queue = (job.metadata.labels or {}).get(KUEUE_QUEUE_LABEL)
    suspended = bool(job.spec and job.spec.suspend) or job_condition(job, "Suspended") is not None
    if suspended:
        return f"Queued ({queue})" if queue else "Suspended"
    pod = newest_pod(pods)
    if pod is None or pod.status is None or not pod.status.phase:
        return "Admitted" if queue else "Pending"
    reason = _waiting_reason(pod)
    return f"{pod.status.phase} ({reason})" if reason else pod.status.phase


def restarts(job: "V1Job", pods: list["V1Pod"]) -> int:
    """How often the run was started again: replacement pods, preempted ones included."""
    failed = (job.status and job.status.failed) or 0
    return max(len(pods) - 1, failed, 0)


def age(created: datetime, now: float | None = None) -> str:
    """Compact age of a timestamp: 45s, 12m, 3h5m, 2d4h."""
    return duration((time.time() if now is None else now) - created.timestamp())


def auroc_lines(progress: dict[str, Progress]) -> list[str]:
    """One line per finished run and OOD set: its AUROCs (marginal and joint score)."""
    lines = []
    for name in sorted(progress):
        result = progress[name].result
        for ood, scores in (result.auroc if result else {}).items():
            pairs = (("marginal", scores.marginal), ("joint", scores.joint))
            shown = [f"{kind} {value:.4f}" for kind, value in pairs if value is not None]
            lines.append(f"{result.run_id}: auroc vs {ood} {', '.join(shown) or '-'}")
    return lines


def status_table(jobs: list["V1Job"], pods: list["V1Pod"], progress: dict[str, Progress]) -> str:
    """The table `status` prints: one row per Job, sorted by experiment and seed."""
    rows = []
    for job in sorted(jobs, key=sort_key):
        mine = [pod for pod in pods if job_of(pod) == job.metadata.name]
        labels = job.metadata.labels or {}
        rows.append(
            [
                labels.get(EXPERIMENT_KEY, "?"),
                labels.get(SEED_KEY, "?"),
                job_phase(job, mine),
                str(restarts(job, mine)),
                *progress_cells(progress.get(job.metadata.name)),
                age(job.metadata.creation_timestamp) if job.metadata.creation_timestamp else "-",
                job.metadata.name,
            ]
        )
    return text_table(HEADER, rows)


def pause(seconds: float) -> None:
    """Wait between two refreshes of `status --watch` (tests replace it)."""
    time.sleep(seconds)


def watch(show: Callable[[], None], interval: float) -> None:
    """Call `show` every `interval` seconds until Ctrl-C, which ends the watch normally."""
    try:
        while True:
            if sys.stdout.isatty():
                print("\033[H\033[J", end="")  # clear the terminal
            print(f"status at {time.strftime('%H:%M:%S')}, every {interval:g} s (Ctrl-C stops)")
            show()
            sys.stdout.flush()
            pause(interval)
    except KeyboardInterrupt:
        print()
