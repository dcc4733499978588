"""The run store's local backend on its own (runner.store): atomic writes, a failed write, an unwritable path, a
bad scheme; and the S3 client's configuration (no server). Both backends, S3 and faults:
tests/integration/test_store.py."""

import os
import threading
from pathlib import Path

import pytest

from runner.errors import UserError
from runner.store import LocalStore, open_store
from runner.store.s3 import client_config


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*") if not p.name.endswith(".lock"))


def test_local_writes_are_atomic(tmp_path):
    store = LocalStore(tmp_path)
    versions = [bytes([i]) * 3_000_000 for i in range(2)]
    store.write("run/ckpt.pt", versions[0])
    seen, stop = set(), threading.Event()

    def reader():
        while not stop.is_set():
            data = store.read("run/ckpt.pt")
            seen.add(data[:1] + data[-1:] if data in versions else b"partial")

    thread = threading.Thread(target=reader)
    thread.start()
    for i in range(30):
        store.write("run/ckpt.pt", versions[i % 2])
    stop.set()
    thread.join()
    assert b"partial" not in seen and len(seen) >= 1
    assert leftovers(tmp_path) == []


def test_local_failed_write_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    store = LocalStore(tmp_path)
    store.write("run/a", b"old")

    def broken_fsync(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        store.write("run/a", b"new")
    with pytest.raises(TypeError):
        store.write("run/b", "not bytes")
    monkeypatch.undo()
    assert store.read("run/a") == b"old"
    assert store.list("run/") == ["run/a"]
    assert leftovers(tmp_path) == []


def test_local_store_on_unwritable_path(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match="not a writable directory"):
        open_store(str(tmp_path / "file" / "runs")).check()


def test_bad_scheme():
    with pytest.raises(UserError, match="gs://x"):
        open_store("gs://x")
    with pytest.raises(UserError, match="bucket"):
        open_store("s3://")


def test_client_config(monkeypatch):
    config = client_config(3)
    assert config.retries == {"total_max_attempts": 3, "mode": "standard"}
    assert (config.connect_timeout, config.read_timeout) == (5, 60)
    assert config.request_checksum_calculation == "when_required"
    assert config.response_checksum_validation == "when_required"
    assert config.s3 is None
    monkeypatch.setenv("CLEL_S3_ADDRESSING", "path")
    assert client_config(3).s3 == {"addressing_style": "path"}
    monkeypatch.setenv("CLEL_S3_ADDRESSING", "sideways")
    with pytest.raises(UserError, match="CLEL_S3_ADDRESSING"):
        client_config(3)
