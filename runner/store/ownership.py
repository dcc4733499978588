"""One owner per run, on every store (docs/STORAGE.md, "One owner per run"): a run is trained and evaluated by one
process at a time, and a process that is not the owner writes nothing into it.

- Local store: an exclusive `flock` on `<run>/.lock`, with the owner's pid in it. The kernel releases it when the
  process dies, however it dies.
- S3 store: a lease object `<run>/lease.json` created with a conditional write (If-None-Match: *), renewed by the
  owner every LEASE_SECONDS / 4 with If-Match on the version it last wrote (a heartbeat thread), and released by
  a conditional overwrite that marks it free. A lease not renewed for LEASE_SECONDS (by the store's own clock: the
  object's Last-Modified against the response's Date) has expired and is taken over with If-Match on the expired
  version, so two processes cannot both take it. A killed owner therefore blocks its run for at most LEASE_SECONDS.
  Before every checkpoint and result the owner checks that the lease is still the version it wrote.
"""

import errno
import fcntl
import json
import os
import socket
import threading
import time
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from runner.errors import OwnershipLost, PointerConflict, RunHeld, UserError
from runner.layout import LEASE_FILE, LOCK_FILE
from runner.store.base import Store

DEFAULT_LEASE_SECONDS = 120.0  # a killed owner's run is free again after this long at most
MAX_LEASE_SECONDS = 3600.0


def lease_seconds() -> float:
    """CLEL_LEASE_SECONDS (default 120): how long an S3 lease lives without a heartbeat."""
    value = os.environ.get("CLEL_LEASE_SECONDS", "")
    try:
        seconds = float(value) if value.strip() else DEFAULT_LEASE_SECONDS
    except ValueError:
        seconds = -1.0
    if not 1.0 <= seconds <= MAX_LEASE_SECONDS:
        raise UserError(f"CLEL_LEASE_SECONDS={value!r}: expected seconds between 1 and {MAX_LEASE_SECONDS:g}")
    return seconds


@dataclass(frozen=True)
class Holder:
    """Who holds a run: a description (host, pid) and, on S3, the seconds its lease has left."""

    who: str
    seconds_left: float | None = None

    def text(self) -> str:
        if self.seconds_left is None:
            return self.who
        until = time.strftime("%H:%M:%S", time.localtime(time.time() + self.seconds_left))
        return f"{self.who} until {until} unless renewed"


class Ownership(ABC):
    """Held from `acquire` to `release`; `check` raises OwnershipLost once it is no longer this process's."""

    @abstractmethod
    def acquire(self) -> None: ...

    @abstractmethod
    def check(self) -> None: ...

    @abstractmethod
    def release(self) -> None: ...

    def __enter__(self) -> "Ownership":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


class LocalLock(Ownership):
    """flock on <run>/.lock with this process's pid in it (`status --local` reads it, `cancel --local` uses it)."""

    def __init__(self, folder: Path, run_id: str):
        self.folder, self.run_id = folder, run_id
        self._file = None

    def acquire(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        try:  # O_NOFOLLOW: a symbolic link planted as .lock is refused, never followed
            descriptor = os.open(self.folder / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
        except OSError as err:
            if err.errno == errno.ELOOP:
                raise UserError(f"{self.folder / LOCK_FILE} is a symbolic link; move it away") from None
            raise
        lock = os.fdopen(descriptor, "a+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            pid = lock.read(32).strip()
            lock.close()
            raise RunHeld(f"run {self.run_id} is held by process {pid or '?'} on this machine") from None
        lock.truncate(0)
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        self._file = lock

    def check(self) -> None:
        """A held flock cannot be taken from its holder."""

    def release(self) -> None:
        if self._file is not None:
            self._file.truncate(0)
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def _parse_lease(data: bytes) -> dict | None:
    """A lease's fields when it reads as one (untrusted bytes: anything else is None)."""
    try:
        lease = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(lease, dict) or not isinstance(lease.get("owner"), str):
        return None
    seconds = lease.get("lease_s")
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or not 1 <= seconds <= MAX_LEASE_SECONDS:
        return None
    return lease


def lease_holder(store: Store, run_id: str) -> Holder | None:
    """Who holds a run's S3 lease now (None: nobody, or not an S3 store); reads only."""
    key = f"{run_id}/{LEASE_FILE}"
    pointer = store.read_pointer(key)
    if pointer is None:
        return None
    lease = _parse_lease(pointer[0])
    age = store.pointer_age(key)
    if lease is None or lease.get("released") or age is None or age > lease["lease_s"]:
        return None
    return Holder(f"{lease.get('host', '?')} pid {lease.get('pid', '?')}", lease["lease_s"] - age)


class S3Lease(Ownership):
    """The run's lease object, held with conditional writes and a heartbeat thread (see the module's docstring)."""

    def __init__(self, store: Store, run_id: str, seconds: float | None = None):
        self.store, self.run_id = store, run_id
        self.key = f"{run_id}/{LEASE_FILE}"
        self.seconds = lease_seconds() if seconds is None else seconds
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._tag: str | None = None
        self._renewals = 0
        self._lost = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _body(self, released: bool = False) -> bytes:
        fields = {"owner": self.owner, "host": socket.gethostname(), "pid": os.getpid(), "lease_s": self.seconds}
        return json.dumps(fields | {"renewals": self._renewals, "released": released}, sort_keys=True).encode()

    def acquire(self) -> None:
        for _ in range(5):  # each round either takes the lease or finds a live holder; a lost race reads again
            pointer = self.store.read_pointer(self.key)
            expected = None
            if pointer is not None:
                lease = _parse_lease(pointer[0])
                age = self.store.pointer_age(self.key)
                if lease is not None and not lease.get("released") and age is not None and age <= lease["lease_s"]:
                    holder = Holder(f"{lease.get('host', '?')} pid {lease.get('pid', '?')}", lease["lease_s"] - age)
                    raise RunHeld(f"run {self.run_id} is held by {holder.text()}")
                expected = pointer[1]  # free: released, expired, or not a lease; taken over from that version
            try:
                self._tag = self.store.write_pointer(self.key, self._body(), expected)
            except PointerConflict:
                continue
            self._thread = threading.Thread(target=self._heartbeat, name=f"lease {self.run_id}", daemon=True)
            self._thread.start()
            return
        raise RunHeld(f"run {self.run_id}: its lease keeps changing hands; another process is taking it")

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.seconds / 4):
            with self._lock:
                if self._lost:
                    return
                self._renewals += 1
                try:
                    self._tag = self.store.write_pointer(self.key, self._body(), self._tag)
                except PointerConflict:
                    self._lost = True
                    return
                except Exception:  # noqa: BLE001 - a store hiccup: the next beat tries again, check() decides
                    continue

    def check(self) -> None:
        with self._lock:
            if not self._lost:
                pointer = self.store.read_pointer(self.key)
                self._lost = pointer is None or pointer[1] != self._tag
            if self._lost:
                raise OwnershipLost(
                    f"run {self.run_id}: this process's lease expired and another process took the run over; "
                    "it stopped without writing"
                )

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            if self._lost or self._tag is None:
                return
            try:
                self.store.write_pointer(self.key, self._body(released=True), self._tag)
            except Exception:  # noqa: BLE001 - taken over meanwhile, or the store is away: it expires on its own
                pass
            self._tag = None


def ownership_of(store: Store, run_id: str) -> Ownership:
    """The ownership a run on this store is held with: a lock on a local store, a lease on S3."""
    folder = store.local_path(f"{run_id}/")
    return LocalLock(folder, run_id) if folder is not None else S3Lease(store, run_id)
