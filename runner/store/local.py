"""A local directory as a store: atomic writes, and pointers guarded by a file lock."""

import fcntl
import tempfile
from pathlib import Path

from runner.atomic_file import write_atomic
from runner.errors import PointerConflict, UserError
from runner.store.base import Store, check_key, is_valid_key, sha256


class LocalStore(Store):
    """A directory; every key is a file below it, written through a temporary file and a rename."""

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().resolve()
        self.uri = str(self.root)

    def _path(self, key: str, prefix: bool = False) -> Path:
        """The key's path below the root, refused (one line) when any part of it below the root is a symbolic
        link: a link planted in a store never sends a read or a write outside it."""
        path = self.root / check_key(key, prefix)
        for parent in [*reversed(path.relative_to(self.root).parents), Path(path.relative_to(self.root))]:
            part = self.root / parent
            if part != self.root and part.is_symlink():
                raise UserError(
                    f"store {self.uri}: {part.relative_to(self.root)} is a symbolic link; the runner never reads "
                    "or writes through one (move it away)"
                )
        return path

    def local_path(self, key: str) -> Path:
        return self._path(key, prefix=True)

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
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise KeyError(key) from None

    def read_tail(self, key: str, max_bytes: int) -> bytes:
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be >= 1, got {max_bytes}")
        try:
            with open(self._path(key), "rb") as file:
                file.seek(max(file.seek(0, 2) - max_bytes, 0))
                return file.read(max_bytes)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise KeyError(key) from None

    def write(self, key: str, data: bytes) -> None:
        try:
            write_atomic(self._path(key), data)
        except (IsADirectoryError, NotADirectoryError, FileExistsError) as err:
            raise UserError(f"store {self.uri}: {key} cannot be written ({err.strerror}); move it away") from None

    def upload(self, key: str, path: Path) -> None:
        if Path(path).resolve() != self._path(key).resolve():
            self.write(key, Path(path).read_bytes())

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix, prefix=True)
        folder = base if prefix == "" or prefix.endswith("/") else base.parent
        if not folder.is_dir():
            return []
        keys = (p.relative_to(self.root).as_posix() for p in folder.rglob("*") if p.is_file())
        return sorted(k for k in keys if k.startswith(prefix) and is_valid_key(k) and not Path(k).name.startswith("."))

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def read_pointer(self, key: str) -> tuple[bytes, str] | None:
        try:
            data = self.read(key)
        except KeyError:
            return None
        return data, sha256(data)

    def write_pointer(self, key: str, data: bytes, expected_tag: str | None) -> str:
        path = self._path(key)
        lock_path = path.with_name(f".{path.name}.lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            current = self.read_pointer(key)
            current_tag = current[1] if current else None
            if current_tag != expected_tag:
                raise PointerConflict(f"{key} was moved by another writer")
            self.write(key, data)
        return sha256(data)
