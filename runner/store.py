"""Run storage with one layout for a local directory and an S3-compatible bucket (DESIGN 4).

<store>/<run_id>/config.json, ckpt/step-XXXXXXXX.pt, ckpt/LATEST, metrics.jsonl, events.*, samples.png,
result.json. LATEST = {"key", "sha256", "step", "history": [older {"key", "sha256", "step"}]} is written
only after the checkpoint object is complete, with a conditional write, so it always names a complete
checkpoint and a stale writer cannot move it backwards.
"""

import fcntl
import hashlib
import json
import os
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from runner.errors import UserError

LATEST = "ckpt/LATEST"


class PointerConflict(Exception):
    """A conditional write of a pointer lost: another writer moved it since we read it."""


class Store(ABC):
    """Byte objects under string keys, plus conditionally written small pointers."""

    uri: str

    @abstractmethod
    def read(self, key: str) -> bytes:
        """The object's bytes; KeyError if it does not exist."""

    @abstractmethod
    def write(self, key: str, data: bytes) -> None:
        """Write an object completely or not at all."""

    @abstractmethod
    def upload(self, key: str, path: Path) -> None:
        """Copy a local file to an object."""

    @abstractmethod
    def download(self, key: str, path: Path) -> None:
        """Copy an object to a local file; KeyError if it does not exist."""

    @abstractmethod
    def list(self, prefix: str) -> list[str]:
        """Keys under a prefix, sorted."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove an object (no error if absent)."""

    @abstractmethod
    def read_pointer(self, key: str) -> tuple[bytes, str] | None:
        """(content, version tag) of a pointer object, or None."""

    @abstractmethod
    def write_pointer(self, key: str, data: bytes, expected_tag: str | None) -> str:
        """Write a pointer only if its version is still expected_tag (None: only if absent); new tag."""

    @abstractmethod
    def check(self) -> None:
        """Raise UserError if the store cannot be used (unreachable, no bucket, not writable)."""

    def local_path(self, key: str) -> Path | None:
        """The key's file on this machine, when the store is a local directory."""
        return None


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class LocalStore(Store):
    """A directory; writes go to a temporary file, are fsynced, then renamed into place."""

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().resolve()
        self.uri = str(self.root)

    def _path(self, key: str) -> Path:
        return self.root / key

    def local_path(self, key: str) -> Path:
        return self._path(key)

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = tempfile.NamedTemporaryFile(dir=self.root, prefix=".probe-")
            probe.close()
        except OSError as err:
            raise UserError(f"store {self.uri}: not a writable directory ({err.strerror})") from None

    def read(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise KeyError(key) from None

    def write(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def upload(self, key: str, path: Path) -> None:
        if Path(path).resolve() != self._path(key).resolve():
            self.write(key, Path(path).read_bytes())

    def download(self, key: str, path: Path) -> None:
        data = self.read(key)
        if Path(path).resolve() != self._path(key).resolve():
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_bytes(data)

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix)
        folder = base if base.is_dir() else base.parent
        if not folder.is_dir():
            return []
        keys = (p.relative_to(self.root).as_posix() for p in folder.rglob("*") if p.is_file())
        return sorted(k for k in keys if k.startswith(prefix) and not Path(k).name.startswith("."))

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def read_pointer(self, key: str) -> tuple[bytes, str] | None:
        try:
            data = self.read(key)
        except KeyError:
            return None
        return data, sha256(data)

    def write_pointer(self, key: str, data: bytes, expected_tag: str | None) -> str:
        lock_path = self._path(key).with_name(f".{Path(key).name}.lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            current = self.read_pointer(key)
            current_tag = current[1] if current else None
            if current_tag != expected_tag:
                raise PointerConflict(f"{key} was moved by another writer")
            self.write(key, data)
        return sha256(data)


def open_store(uri: str) -> Store:
    """A Store for 's3://bucket/prefix' or a local directory path."""
    if uri.startswith("s3://"):
        from runner.s3 import S3Store

        return S3Store(uri)
    if "://" in uri:
        raise UserError(f"store {uri}: unsupported scheme (use a directory or s3://bucket/prefix)")
    return LocalStore(uri)


class CheckpointError(Exception):
    """No usable checkpoint although the run has completed ones."""


class RunStore:
    """One run's directory in a store: config guard, checkpoints with LATEST, artifacts."""

    def __init__(self, store: Store, run_id: str, keep: int = 3):
        self.store, self.run_id, self.keep = store, run_id, keep
        self._pointer_tag: str | None = None
        self._latest: dict[str, Any] | None = None

    def key(self, name: str) -> str:
        return f"{self.run_id}/{name}"

    # --- config guard -------------------------------------------------------------------------
    def claim(self, config: dict[str, Any], config_hash: str) -> None:
        """Write config.json, or check that an existing one has the same hash (UserError if not)."""
        try:
            existing = json.loads(self.store.read(self.key("config.json")))
        except KeyError:
            body = json.dumps({"config_hash": config_hash, "config": config}, indent=2, sort_keys=True)
            self.store.write(self.key("config.json"), body.encode())
            return
        except (ValueError, UnicodeDecodeError):
            raise UserError(f"{self.store.uri}/{self.key('config.json')}: unreadable; move the run away") from None
        if existing.get("config_hash") != config_hash:
            changed = _changed_keys(existing.get("config", {}), config)
            raise UserError(
                f"run {self.run_id} in {self.store.uri} was started with config {existing.get('config_hash')}, "
                f"this command resolves to {config_hash} (changed: {', '.join(changed) or 'unknown'}); "
                "use another --store or seed, or remove the run"
            )

    # --- checkpoints --------------------------------------------------------------------------
    def _read_latest(self) -> dict[str, Any] | None:
        pointer = self.store.read_pointer(self.key(LATEST))
        if pointer is None:
            self._pointer_tag = None
            return None
        data, self._pointer_tag = pointer
        try:
            latest = json.loads(data)
            latest["key"], latest["sha256"]
        except (ValueError, KeyError, TypeError):
            raise CheckpointError(f"{self.key(LATEST)} is unreadable") from None
        return latest

    def save_checkpoint(self, step: int, payload: bytes) -> str:
        """Write ckpt/step-XXXXXXXX.pt, then move LATEST to it (conditionally), then prune old ones."""
        key = self.key(f"ckpt/step-{step:08d}.pt")
        self.store.write(key, payload)
        latest = self._read_latest_if_unknown()
        history = []
        if latest is not None:
            if latest.get("step", -1) > step:
                raise PointerConflict(f"LATEST is at step {latest['step']}, ahead of this writer's {step}")
            previous = {k: latest[k] for k in ("key", "sha256", "step") if k in latest}
            history = [previous, *latest.get("history", [])]
        history = [h for h in history if h["key"] != key][: self.keep - 1]
        entry = {"key": key, "sha256": sha256(payload), "step": step, "history": history}
        self._pointer_tag = self.store.write_pointer(self.key(LATEST), json.dumps(entry).encode(), self._pointer_tag)
        self._latest = entry
        kept = {key, *(h["key"] for h in history)}
        for old in self.store.list(self.key("ckpt/step-")):
            if old not in kept:
                self.store.delete(old)
        return key

    def _read_latest_if_unknown(self) -> dict[str, Any] | None:
        if self._latest is not None:
            return self._latest
        try:
            return self._read_latest()
        except CheckpointError:
            return None

    def load_checkpoint(self, log=print) -> bytes | None:
        """The newest checkpoint whose sha256 verifies (falling back along LATEST's history), or None.

        None only when the run has no checkpoint at all; CheckpointError when it has some but none verifies.
        """
        latest = self._read_latest()
        self._latest = latest
        if latest is None:
            if self.store.list(self.key("ckpt/step-")):
                raise CheckpointError(f"{self.key('ckpt')} has checkpoints but no LATEST pointer")
            return None
        candidates = [latest, *latest.get("history", [])]
        for i, candidate in enumerate(candidates):
            try:
                payload = self.store.read(candidate["key"])
            except KeyError:
                problem = "is missing"
            else:
                if sha256(payload) == candidate["sha256"]:
                    return payload
                problem = "fails its sha256 check"
            later = candidates[i + 1]["key"] if i + 1 < len(candidates) else None
            fallback = f"falling back to {later}" if later else "no older checkpoint left"
            log(f"checkpoint {candidate['key']} {problem}; {fallback}")
        raise CheckpointError(f"no checkpoint of {self.run_id} in {self.store.uri} passes its sha256 check")

    def latest_step(self) -> int | None:
        """The step LATEST points to, or None (for status tables)."""
        try:
            latest = self._read_latest()
        except CheckpointError:
            return None
        return None if latest is None else latest.get("step")

    # --- artifacts ----------------------------------------------------------------------------
    def write_json(self, name: str, value: Any) -> None:
        self.store.write(self.key(name), (json.dumps(value, indent=2, sort_keys=True) + "\n").encode())

    def read_json(self, name: str) -> Any:
        return json.loads(self.store.read(self.key(name)))


def _changed_keys(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    changed = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            changed += _changed_keys(a, b, f"{prefix}{key}.")
        elif a != b:
            changed.append(f"{prefix}{key}")
    return changed
