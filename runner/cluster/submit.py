"""`submit`: create the sweep's missing Jobs, report existing ones, replace conflicting ones only when asked.

A conflict is a Job that holds a run's name or its run (store + run id) with another config hash.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from runner.cluster.names import HASH_KEY, MANAGED_BY, RUN_ID_KEY, STORE_KEY, annotation

if TYPE_CHECKING:
    from kubernetes.client import V1Job

    from runner.cluster.api import KubeApi


@dataclass(frozen=True)
class Outcome:
    """What submit did (or would do) for one Job."""

    action: Literal["created", "exists", "conflict", "replaced"]
    name: str
    run_id: str
    detail: str = ""


def _same_run(a: "V1Job", b: "V1Job") -> bool:
    return annotation(a, RUN_ID_KEY) == annotation(b, RUN_ID_KEY) and annotation(a, STORE_KEY) == annotation(
        b, STORE_KEY
    )


def _conflicts(job: "V1Job", existing: list["V1Job"]) -> list["V1Job"]:
    """Existing Jobs that hold this Job's name or its run (store + run id) with another config hash."""
    mine = annotation(job, HASH_KEY)
    return [
        other
        for other in existing
        if (other.metadata.name == job.metadata.name or _same_run(other, job)) and annotation(other, HASH_KEY) != mine
    ]


def submit_jobs(api: "KubeApi", jobs: list["V1Job"], dry_run: bool = False, replace: bool = False) -> list[Outcome]:
    """Create the missing Jobs; report existing ones; replace conflicting ones only when asked."""
    existing = api.list_jobs(f"{MANAGED_BY[0]}={MANAGED_BY[1]}")
    by_name = {job.metadata.name: job for job in existing}
    outcomes = []
    for job in jobs:
        name, run_id = job.metadata.name, annotation(job, RUN_ID_KEY) or ""
        conflicts = _conflicts(job, existing)
        if not conflicts and name in by_name:
            outcomes.append(Outcome("exists", name, run_id))
            continue
        if conflicts and not replace:
            old = conflicts[0]
            theirs, mine = annotation(old, HASH_KEY), annotation(job, HASH_KEY)
            detail = f"Job {old.metadata.name} has config {theirs}, this one {mine}"
            outcomes.append(Outcome("conflict", name, run_id, detail))
            continue
        for old in conflicts:
            api.delete_job(old.metadata.name, dry_run)
            if old.metadata.name == name and not dry_run:
                api.wait_deleted(name)
        name_still_taken = dry_run and any(old.metadata.name == name for old in conflicts)
        created = job if name_still_taken else api.create_job(job, dry_run)
        if created is None:
            outcomes.append(_after_race(api, job))
            continue
        action = "replaced" if conflicts else "created"
        replaced = ", ".join(old.metadata.name for old in conflicts)
        outcomes.append(Outcome(action, name, run_id, f"was {replaced}" if conflicts else ""))
    return outcomes


def _after_race(api: "KubeApi", job: "V1Job") -> Outcome:
    """The create hit a Job of the same name made meanwhile: classify it like any existing one."""
    name, run_id = job.metadata.name, annotation(job, RUN_ID_KEY) or ""
    current = api.read_job(name)
    if current is not None and annotation(current, HASH_KEY) != annotation(job, HASH_KEY):
        return Outcome("conflict", name, run_id, f"Job {name} has config {annotation(current, HASH_KEY)}")
    return Outcome("exists", name, run_id)
