"""The names the rendered Jobs carry and the commands select by: labels, annotations, the container.

No kubernetes import here: status, logs and cancel build their label selectors from this module alone.
"""

from typing import Any

CONTAINER = "worker"
LABEL = "clel/"  # prefix of this project's labels and annotations
MANAGED_BY = ("app.kubernetes.io/managed-by", "clel-runner")
APP_NAME = ("app.kubernetes.io/name", "clel-runner")
EXPERIMENT_KEY = f"{LABEL}experiment"
SEED_KEY = f"{LABEL}seed"
HASH_KEY = f"{LABEL}config-hash"
RUN_ID_KEY = f"{LABEL}run-id"
STORE_KEY = f"{LABEL}store"
POINT_KEY = f"{LABEL}point"  # label: the point's tag (runner.layout); annotation: the point's settings as JSON
JOB_NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"  # the LocalQueue a Job waits in ([cluster] queue_name)


def selector(sweep: str, exp: str | None = None, seed: int | None = None) -> str:
    """The label selector of a sweep's Jobs and pods, optionally one experiment and seed."""
    parts = [f"{MANAGED_BY[0]}={MANAGED_BY[1]}", f"{LABEL}sweep={sweep}"]
    if exp:
        parts.append(f"{EXPERIMENT_KEY}={exp}")
    if seed is not None:
        parts.append(f"{SEED_KEY}={seed}")
    return ",".join(parts)


def job_of(pod: Any) -> str | None:
    """The name of the Job that owns a pod (from the Job controller's labels)."""
    labels = pod.metadata.labels or {}
    return next((labels[key] for key in JOB_NAME_LABELS if key in labels), None)


def annotation(obj: Any, key: str) -> str | None:
    """One annotation of a Job (or any object with metadata), None if absent."""
    return (obj.metadata.annotations or {}).get(key)
