"""Run storage with one layout for a local directory and an S3-compatible bucket.

Public surface: `open_store(uri)` gives a `Store` (byte objects under validated keys); `RunStore` is one
run's directory on it (config guard, checkpoints, LATEST); `download_object` fetches one file by URI.
"""

from pathlib import Path

from runner.errors import UserError, redact
from runner.store.base import Store, check_key, is_valid_key, sha256
from runner.store.local import LocalStore
from runner.store.ownership import Holder, lease_holder
from runner.store.run_store import CheckpointError, RunStore

__all__ = [
    "CheckpointError",
    "Holder",
    "LocalStore",
    "RunStore",
    "Store",
    "check_key",
    "download_object",
    "is_valid_key",
    "lease_holder",
    "open_store",
    "sha256",
]


def open_store(uri: str) -> Store:
    """A Store for 's3://bucket/prefix' or a local directory path."""
    if not isinstance(uri, str) or not uri:
        raise UserError("--store: expected a directory or s3://bucket/prefix")
    if uri.startswith("s3://"):
        from runner.store.s3 import S3Store  # boto3 is imported only for S3 stores

        return S3Store(uri)
    if "://" in uri:
        raise UserError(f"store {redact(uri)}: unsupported scheme (use a directory or s3://bucket/prefix)")
    return LocalStore(uri)


def download_object(uri: str, path: Path) -> None:
    """Copy one object, named by a full s3://bucket/key URI, to a local file; KeyError if it is absent."""
    from runner.store.s3 import S3Store

    bucket_uri, _, key = uri.rpartition("/")
    S3Store(bucket_uri).download(key, path)
