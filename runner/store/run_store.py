"""One run's directory in a store: the config guard, checkpoints committed by the LATEST pointer, artifacts.

<run_id>/config.json, ckpt/step-XXXXXXXX-<sha256[:12]>.pt, ckpt/LATEST, metrics.jsonl, events.*, samples.png,
result.json. LATEST = {"key", "sha256", "step", "history": [older {"key", "sha256", "step"}]} is written only
after the checkpoint object is complete, with a conditional write, so it always names a complete checkpoint
and a stale writer cannot move it backwards (docs/ARCHITECTURE.md, "The checkpoint protocol").
"""

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from runner.errors import PointerConflict, UserError
from runner.layout import (
    CKPT_DIR,
    CKPT_PREFIX,
    CONFIG_FILE,
    EVALS_DIR,
    LATEST,
    LOCK_FILE,
    METRICS_FILE,
    RESULT_FILE,
    SAMPLES_FILE,
)
from runner.store.base import Store, sha256
from runner.store.ownership import Ownership, ownership_of

# (name in the run's directory, whether it is a directory): what a run writes
LAYOUT = (
    ("", True),
    (CKPT_DIR, True),
    (EVALS_DIR, True),
    (LOCK_FILE, False),
    (CONFIG_FILE, False),
    (LATEST, False),
    (METRICS_FILE, False),
    (RESULT_FILE, False),
    (SAMPLES_FILE, False),
)


class CheckpointError(Exception):
    """No usable checkpoint although the run has completed ones."""


class RunStore:
    """One run's directory in a store: config guard, checkpoints with LATEST, artifacts.

    LATEST is the commit record: a checkpoint object it does not name is not a checkpoint. Once this object
    has read LATEST (load_checkpoint, or the first save_checkpoint), it moves LATEST only from the version
    it read, so a second, stale writer gets PointerConflict instead of moving it backwards.
    """

    def __init__(self, store: Store, run_id: str, keep: int = 3):
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self.store, self.run_id, self.keep = store, run_id, keep
        self._seen = False  # LATEST was read by this object: _tag and _chain describe it
        self._tag: str | None = None  # LATEST's version tag as last read or written (None: absent)
        self._chain: list[dict[str, Any]] = []  # usable checkpoints, newest first
        self.owner: Ownership | None = None  # while owned(): checked before every checkpoint

    def key(self, name: str) -> str:
        """The store key of a file in this run's directory."""
        return f"{self.run_id}/{name}"

    # --- one owner, and the config guard ---------------------------------------------------------
    @contextmanager
    def owned(self) -> Iterator[Ownership]:
        """Hold the run for this process (runner.store.ownership): a lock on a local store, a lease on S3.
        RunHeld when another live process owns it; while held, every checkpoint first checks the ownership."""
        if self.store.local_path("") is not None:
            self.check_layout()
        with ownership_of(self.store, self.run_id) as owner:
            self.owner = owner
            try:
                yield owner
            finally:
                self.owner = None

    def check_layout(self) -> None:
        """On a local store: UserError if a name the run writes is taken by the wrong kind of entry (a file where
        the run's directory or ckpt/ goes, a directory where config.json or LATEST goes), before anything is written.
        """
        for name, want_dir in LAYOUT:
            path = self.store.local_path(self.key(name))  # refuses a symbolic link on the way (LocalStore)
            if path is None:
                return
            if path.exists() and path.is_dir() != want_dir:
                kind = "a directory" if want_dir else "a file"
                raise UserError(f"store {self.store.uri}: {self.key(name)} is not {kind}; move it away")
        folder = self.store.local_path(self.key(""))
        if folder.is_dir():  # anything else the run directory holds: no link may lead out of the store
            for path in sorted(folder.rglob("*")):
                if path.is_symlink():
                    where = path.relative_to(folder.parent)
                    raise UserError(f"store {self.store.uri}: {where} is a symbolic link; move it away")

    def claim(
        self,
        config: dict[str, Any],
        config_hash: str,
        log: Callable[[str], None] = print,
        point: dict[str, Any] | None = None,
    ) -> None:
        """Write config.json ({config_hash, config, point}), or check that an existing one has the same hash.

        A run that never committed a checkpoint may be claimed again with another config (its leftovers are
        removed); one with checkpoints refuses a different config (UserError naming the changed keys).
        """
        key = self.key(CONFIG_FILE)
        record = {"config_hash": config_hash, "config": config, "point": point or {}}
        body = json.dumps(record, indent=2, sort_keys=True).encode()
        try:
            existing = json.loads(self.store.read(key))
            if not isinstance(existing, dict):
                raise ValueError
        except KeyError:
            self.store.write(key, body)
            return
        except (ValueError, UnicodeDecodeError):
            existing = None
        if existing is not None and existing.get("config_hash") == config_hash:
            return
        if self.store.read_pointer(self.key(LATEST)) is None:
            leftovers = [k for k in self.store.list(self.key("")) if k != key]
            log(f"run {self.run_id} never committed a checkpoint: starting it again with config {config_hash}")
            for leftover in leftovers:
                self.store.delete(leftover)
            self.store.write(key, body)
            return
        if existing is None:
            raise UserError(f"{self.store.uri}/{key}: unreadable, and the run has checkpoints; move the run away")
        old = existing.get("config", {})
        changed = _changed_keys(old if isinstance(old, dict) else {}, json.loads(json.dumps(config)))
        raise UserError(
            f"run {self.run_id} in {self.store.uri} was started with config {existing.get('config_hash')}, "
            f"this command resolves to {config_hash} (changed: {', '.join(changed) or 'unknown'}); "
            "use another --store or seed, or remove the run"
        )

    # --- checkpoints --------------------------------------------------------------------------
    def _read_latest(self) -> list[dict[str, Any]]:
        """Read LATEST, remember its version tag, and return its checkpoints newest first ([] if absent)."""
        pointer = self.store.read_pointer(self.key(LATEST))
        self._seen, self._tag, self._chain = True, pointer and pointer[1], []
        if pointer is not None:
            self._chain = _parse_latest(pointer[0], self.key(LATEST), self.run_id)
        return self._chain

    def save_checkpoint(self, step: int, payload: bytes) -> str:
        """Write the checkpoint object, then move LATEST to it (conditionally), then prune old ones; its key."""
        if not self._seen:
            try:
                self._read_latest()
            except CheckpointError:
                pass  # an unreadable LATEST is replaced; its version tag is known
        if self._chain and self._chain[0]["step"] > step:
            raise PointerConflict(f"LATEST is at step {self._chain[0]['step']}, ahead of this writer's {step}")
        digest = sha256(payload)
        # The digest in the name keeps a stale writer from overwriting a checkpoint LATEST names.
        key = self.key(f"{CKPT_PREFIX}{step:08d}-{digest[:12]}.pt")
        if self.owner is not None:
            self.owner.check()  # a process that lost the run writes nothing into it
        self.store.write(key, payload)
        entry = {"key": key, "sha256": digest, "step": step}
        history = [old for old in self._chain if old["key"] != key][: self.keep - 1]
        pointer = json.dumps({**entry, "history": history}).encode()
        try:
            self._tag = self.store.write_pointer(self.key(LATEST), pointer, self._tag)
        except PointerConflict:
            if all(old["key"] != key for old in self._chain):
                self.store.delete(key)  # the loser's object: never named by LATEST, never left behind
            raise
        self._chain = [entry, *history]
        kept = {old["key"] for old in self._chain}
        for old in self.store.list(self.key(CKPT_PREFIX)):
            # Newer objects not named by LATEST may be another writer's, about to be promoted: left alone.
            old_step = _step_of(old)
            if old not in kept and old_step is not None and old_step <= step:
                self.store.delete(old)
        return key

    def load_checkpoint(self, log: Callable[[str], None] = print) -> bytes | None:
        """The newest checkpoint whose sha256 verifies (falling back along LATEST's history), or None.

        None when LATEST is absent (no checkpoint was ever completed); CheckpointError when LATEST is unreadable
        or none of the checkpoints it names verifies.
        """
        chain = self._read_latest()
        if not chain:
            if orphans := self.store.list(self.key(CKPT_PREFIX)):
                log(f"{self.key(LATEST)} is absent: ignoring {len(orphans)} uncommitted checkpoint object(s)")
            return None
        problems = []
        for i, entry in enumerate(chain):
            payload, problem = self._verified(entry)
            if payload is not None:
                self._chain = chain[i:]
                return payload
            problems.append(f"{entry['key']} {problem}")
            if i + 1 < len(chain):
                log(f"checkpoint {entry['key']} {problem}; falling back to {chain[i + 1]['key']}")
        raise CheckpointError(
            f"no checkpoint of {self.run_id} in {self.store.uri} passes its sha256 check ({'; '.join(problems)})"
        )

    def kept_checkpoints(self) -> list[tuple[int, bytes]]:
        """(step, payload) of every checkpoint LATEST names that is present and verifies, oldest first (for
        diagnosis scripts: how a run moved between saves); [] without LATEST, CheckpointError if it is
        unreadable."""
        verified = [(entry["step"], self._verified(entry)[0]) for entry in reversed(self._read_latest())]
        return [(step, payload) for step, payload in verified if payload is not None]

    def _verified(self, entry: dict[str, Any]) -> tuple[bytes | None, str]:
        """(the payload LATEST's entry names, '') when present and its sha256 matches, else (None, the problem)."""
        try:
            payload = self.store.read(entry["key"])
        except KeyError:
            return None, "is missing"
        return (payload, "") if sha256(payload) == entry["sha256"] else (None, "fails its sha256 check")

    def loaded_step(self) -> int | None:
        """The step LATEST gives for the checkpoint load_checkpoint returned (None before one was loaded)."""
        return self._chain[0]["step"] if self._seen and self._chain else None

    def latest_step(self) -> int | None:
        """The step LATEST points to, or None (for status tables); reads only."""
        pointer = self.store.read_pointer(self.key(LATEST))
        if pointer is None:
            return None
        try:
            return _parse_latest(pointer[0], self.key(LATEST), self.run_id)[0]["step"]
        except CheckpointError:
            return None


def _parse_latest(data: bytes, name: str, run_id: str) -> list[dict[str, Any]]:
    """LATEST's checkpoints, newest first; CheckpointError if it is not a valid pointer of this run.

    Every entry must name a checkpoint key of this run (<run_id>/ckpt/step-<8 digits>-<12 hex>.pt) with a
    64-hex sha256 and a step >= 0: a forged pointer cannot send a read anywhere else.
    """
    key_pattern = re.compile(rf"{re.escape(run_id)}/{CKPT_PREFIX}\d{{8}}-[0-9a-f]{{12}}\.pt")
    try:
        latest = json.loads(data)
        chain = [latest, *latest.get("history", [])]
        chain = [{"key": e["key"], "sha256": e["sha256"], "step": e["step"]} for e in chain]
        for e in chain:
            if not (isinstance(e["key"], str) and key_pattern.fullmatch(e["key"])):
                raise TypeError
            if not (isinstance(e["sha256"], str) and re.fullmatch(r"[0-9a-f]{64}", e["sha256"])):
                raise TypeError
            if type(e["step"]) is not int or e["step"] < 0:
                raise TypeError
    except (ValueError, KeyError, TypeError, AttributeError):
        raise CheckpointError(f"{name} is unreadable") from None
    return chain


def _step_of(key: str) -> int | None:
    """The step in a checkpoint key (.../step-00001200-<digest>.pt), or None."""
    match = re.match(r"step-(\d+)", key.rpartition("/")[2])
    return int(match.group(1)) if match else None


def _changed_keys(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    changed = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            changed += _changed_keys(a, b, f"{prefix}{key}.")
        elif a != b:
            changed.append(f"{prefix}{key}")
    return changed
