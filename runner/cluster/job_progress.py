"""The progress of a sweep's Jobs, read from the run store they write to (runner.run.status per run).

The store's endpoint, addressing and region come from [cluster] unless the environment sets them; a store that
cannot be reached is a note, never a failure of `status`.
"""

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from runner.cluster.config import ClusterConfig
from runner.cluster.names import HASH_KEY, RUN_ID_KEY, STORE_KEY, annotation
from runner.errors import BadKey, UserError
from runner.layout import CONFIG_FILE
from runner.run.status import Progress, run_progress
from runner.store import RunStore, open_store

if TYPE_CHECKING:
    from kubernetes.client import V1Job


@contextmanager
def store_environment(cluster: ClusterConfig) -> Iterator[None]:
    """The cluster's S3 endpoint, addressing and region for this process, unless the environment sets them."""
    wanted = {
        "AWS_ENDPOINT_URL_S3": cluster.s3_endpoint,
        "CLEL_S3_ADDRESSING": "" if cluster.s3_addressing == "auto" else cluster.s3_addressing,
        "AWS_DEFAULT_REGION": cluster.s3_region,
    }
    added = [key for key, value in wanted.items() if value and key not in os.environ]
    os.environ.update({key: wanted[key] for key in added})
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def read_progress(jobs: list["V1Job"], cluster: ClusterConfig) -> tuple[dict[str, Progress], list[str]]:
    """Each Job's run progress from its store (by Job name), and notes (store unreachable, config mismatch)."""
    found: dict[str, Progress] = {}
    notes: list[str] = []
    by_store: dict[str, list[V1Job]] = {}
    for job in jobs:
        by_store.setdefault(annotation(job, STORE_KEY) or cluster.store, []).append(job)
    with store_environment(cluster):
        for uri, members in by_store.items():
            try:
                store = open_store(uri)
                store.check()
                for job in members:
                    try:
                        run = RunStore(store, annotation(job, RUN_ID_KEY) or "")
                        found[job.metadata.name], run_notes = run_progress(run)
                    except BadKey as err:  # a run-id annotation that is not a store key
                        notes.append(f"note: {job.metadata.name}: {err}")
                        continue
                    notes += run_notes + _config_mismatch(run, annotation(job, HASH_KEY))
            except (UserError, OSError, BotoCoreError, ClientError) as err:
                notes.append(f"note: progress unknown: {err} (set AWS_ENDPOINT_URL_S3 to a reachable endpoint)")
    return found, notes


def _config_mismatch(run: RunStore, expected: str | None) -> list[str]:
    try:
        stored = json.loads(run.store.read(run.key(CONFIG_FILE))).get("config_hash")
    except (KeyError, ValueError, AttributeError):
        return []
    if expected and stored != expected:
        return [
            f"warning: {run.run_id} in the store has config {stored}, its Job was rendered for {expected} "
            "(the image's experiments.toml differs from yours? `make image` and submit with that image)"
        ]
    return []
