"""What every store backend is: byte objects under validated keys, plus conditionally written pointers."""

import hashlib
import re
from abc import ABC, abstractmethod
from pathlib import Path

from runner.errors import BadKey

# A key is a relative path of '/'-separated parts; each part is letters, digits, '.', '_', '-' and not
# '.' or '..'. Keys this project writes always have that form; anything else (a key planted in a bucket,
# a forged pointer) is refused before it can become a local path.
KEY_PART = re.compile(r"[A-Za-z0-9_.-]+")
MAX_KEY_LENGTH = 512


def is_valid_key(key: str, prefix: bool = False) -> bool:
    """Whether `key` is a safe relative key ('' and a trailing '/' are allowed for prefixes)."""
    if not isinstance(key, str) or len(key) > MAX_KEY_LENGTH:
        return False
    if prefix:
        if key == "":
            return True
        key = key.removesuffix("/")
    parts = key.split("/")
    return all(KEY_PART.fullmatch(part) and part not in (".", "..") for part in parts)


def check_key(key: str, prefix: bool = False) -> str:
    """The key itself, or BadKey if it is not a safe relative key."""
    if not is_valid_key(key, prefix):
        raise BadKey(f"refusing the store key {key!r}: not a relative path of letters, digits, '.', '_', '-'")
    return key


def sha256(data: bytes) -> str:
    """Hex SHA-256 of bytes."""
    return hashlib.sha256(data).hexdigest()


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
    def list(self, prefix: str) -> list[str]:
        """Valid keys under a prefix, sorted (keys that are not valid keys are left out)."""

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

    def read_tail(self, key: str, max_bytes: int) -> bytes:
        """The last max_bytes bytes of an object (all of it when shorter); KeyError if it does not exist."""
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be >= 1, got {max_bytes}")
        return self.read(key)[-max_bytes:]

    def download(self, key: str, path: Path) -> None:
        """Copy an object to a local file (written atomically); KeyError if it does not exist."""
        from runner.atomic_file import write_atomic

        write_atomic(Path(path), self.read(key))

    def pointer_age(self, key: str) -> float | None:
        """Seconds since the object was last written, by the store's own clock; None if absent (or unknown)."""
        return None

    def local_path(self, key: str) -> Path | None:
        """The key's file on this machine, when the store is a local directory."""
        return None
