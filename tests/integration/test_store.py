"""The run store (runner.store, runner.s3): both backends, the LATEST protocol, corruption, stale writers, faults.
The local backend on its own: tests/unit/test_store_local.py.

S3 tests talk over HTTP to the moto server of conftest.py, some through tests/support/flaky_proxy.py, which fails or
drops a share of the requests; checks of what is really stored use a direct boto3 client (no proxy).
"""

import hashlib
import io
import json
import random
import socket
import time

import boto3
import pytest
import torch
from botocore.exceptions import ClientError, ConnectionClosedError

from runner.errors import BadKey, PointerConflict, UserError
from runner.layout import LATEST
from runner.store import CheckpointError, RunStore, Store, open_store
from runner.store.s3 import S3Store
from tests.conftest import S3_SERVERS, bucket_name, new_bucket
from tests.support.flaky_proxy import FAULTS, FlakyProxy

RUN = "exp-s0"


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def payload(step: int, size: int = 2000, salt: str = "") -> bytes:
    """Distinct, reproducible checkpoint bytes for a step."""
    return random.Random(f"{salt}{step}").randbytes(size)


class Raw:
    """What is really stored, bypassing the Store under test: files for local, a direct boto3 client for S3."""

    def __init__(self, store: Store, endpoint: str | None = None):
        self.store = store
        self.client = boto3.client("s3", endpoint_url=endpoint) if endpoint else None

    def _where(self, key: str) -> tuple[str, str]:
        return self.store.bucket, self.store._key(key)

    def get(self, key: str) -> bytes | None:
        if self.client is None:
            path = self.store.local_path(key)
            return path.read_bytes() if path.exists() else None
        bucket, name = self._where(key)
        try:
            return self.client.get_object(Bucket=bucket, Key=name)["Body"].read()
        except ClientError:
            return None

    def put(self, key: str, data: bytes) -> None:
        if self.client is None:
            self.store.local_path(key).parent.mkdir(parents=True, exist_ok=True)
            self.store.local_path(key).write_bytes(data)
        else:
            bucket, name = self._where(key)
            self.client.put_object(Bucket=bucket, Key=name, Body=data)

    def delete(self, key: str) -> None:
        if self.client is None:
            self.store.local_path(key).unlink()
        else:
            bucket, name = self._where(key)
            self.client.delete_object(Bucket=bucket, Key=name)

    def checkpoints(self) -> list[str]:
        if self.client is None:
            folder = self.store.local_path(f"{RUN}/ckpt")
            names = sorted(p.name for p in folder.glob("step-*")) if folder.exists() else []
            return [f"{RUN}/ckpt/{name}" for name in names]
        bucket, prefix = self._where(f"{RUN}/ckpt/step-")
        listing = self.client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
        return sorted(item["Key"].removeprefix(self.store._key("", prefix=True)) for item in listing)

    def latest(self) -> dict:
        return json.loads(self.get(f"{RUN}/{LATEST}"))

    def assert_latest_complete(self) -> dict:
        """LATEST and every checkpoint it names are complete objects whose sha256 matches."""
        latest = self.latest()
        for entry in [latest, *latest["history"]]:
            data = self.get(entry["key"])
            assert data is not None, f"LATEST names a missing object {entry['key']}"
            assert digest(data) == entry["sha256"], f"LATEST names a corrupt object {entry['key']}"
        return latest


@pytest.fixture(params=["local", *S3_SERVERS])
def backend(request, tmp_path, monkeypatch) -> tuple[Store, Raw]:
    """(store under test, raw access) for a local directory and for s3://bucket/prefix on each S3 server."""
    if request.param == "local":
        store = open_store(str(tmp_path / "store"))
        store.check()
        return store, Raw(store)
    endpoint = request.getfixturevalue(f"{request.param}_server")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    bucket = bucket_name(request)
    request.addfinalizer(new_bucket(endpoint, bucket))
    store = open_store(f"s3://{bucket}/some/prefix")
    store.check()
    return store, Raw(store, endpoint)


# --- both backends: objects and pointers ----------------------------------------------------------------------


def test_read_tail_returns_the_last_bytes(backend):
    store, _ = backend
    data = b"".join(b'{"step": %d}\n' % step for step in range(1000))
    store.write(f"{RUN}/metrics.jsonl", data)
    assert store.read_tail(f"{RUN}/metrics.jsonl", 28) == b'{"step": 998}\n{"step": 999}\n'
    assert store.read_tail(f"{RUN}/metrics.jsonl", len(data) + 100) == data  # shorter than asked: all of it
    store.write(f"{RUN}/empty", b"")
    assert store.read_tail(f"{RUN}/empty", 10) == b""
    with pytest.raises(KeyError):
        store.read_tail(f"{RUN}/absent.jsonl", 10)
    with pytest.raises(ValueError):
        store.read_tail(f"{RUN}/metrics.jsonl", 0)
    with pytest.raises(BadKey):
        store.read_tail("../metrics.jsonl", 10)


def test_objects_round_trip(backend, tmp_path):
    store, raw = backend
    assert store.list(f"{RUN}/") == [] and store.list("") == []
    with pytest.raises(KeyError):
        store.read(f"{RUN}/absent")
    store.write(f"{RUN}/b.bin", b"\x00\x01" * 1000)
    store.write(f"{RUN}/a.json", b"{}")
    store.write(f"{RUN}/sub/c", b"")
    store.write(f"{RUN}2/other", b"x")
    assert store.read(f"{RUN}/b.bin") == b"\x00\x01" * 1000
    assert store.read(f"{RUN}/sub/c") == b""
    assert store.list(f"{RUN}/") == [f"{RUN}/a.json", f"{RUN}/b.bin", f"{RUN}/sub/c"]
    assert store.list(f"{RUN}/sub/") == [f"{RUN}/sub/c"]
    assert store.list(f"{RUN}/b") == [f"{RUN}/b.bin"]
    assert store.list(f"{RUN}/none/") == []
    assert store.list(RUN) == [f"{RUN}/a.json", f"{RUN}/b.bin", f"{RUN}/sub/c", f"{RUN}2/other"]
    store.write(f"{RUN}/a.json", b'{"v": 2}')
    assert store.read(f"{RUN}/a.json") == b'{"v": 2}'
    assert raw.get(f"{RUN}/a.json") == b'{"v": 2}'

    source = tmp_path / "upload.txt"
    source.write_text("metrics\n")
    store.upload(f"{RUN}/metrics.jsonl", source)
    store.download(f"{RUN}/metrics.jsonl", tmp_path / "down" / "m.jsonl")
    assert (tmp_path / "down" / "m.jsonl").read_text() == "metrics\n"
    with pytest.raises(KeyError):
        store.download(f"{RUN}/absent", tmp_path / "x")

    store.delete(f"{RUN}/b.bin")
    store.delete(f"{RUN}/b.bin")  # absent: no error
    assert store.list(f"{RUN}/") == [f"{RUN}/a.json", f"{RUN}/metrics.jsonl", f"{RUN}/sub/c"]


def test_pointer_conditional_writes(backend):
    store, _ = backend
    key = f"{RUN}/{LATEST}"
    assert store.read_pointer(key) is None
    tag1 = store.write_pointer(key, b"one", None)
    assert store.read_pointer(key) == (b"one", tag1)
    with pytest.raises(PointerConflict):
        store.write_pointer(key, b"other", None)  # If-None-Match: it exists
    tag2 = store.write_pointer(key, b"two", tag1)
    with pytest.raises(PointerConflict):
        store.write_pointer(key, b"three", tag1)  # If-Match on a stale tag
    assert store.read_pointer(key) == (b"two", tag2)
    store.delete(key)
    with pytest.raises(PointerConflict):
        store.write_pointer(key, b"four", tag2)  # If-Match on a deleted pointer
    assert store.read_pointer(key) is None


# --- both backends: checkpoints -------------------------------------------------------------------------------


class Recording(Store):
    """A store that records write_pointer/delete calls of the store it wraps."""

    def __init__(self, inner: Store):
        self.inner, self.uri, self.calls = inner, inner.uri, []

    def read(self, key):
        return self.inner.read(key)

    def write(self, key, data):
        self.calls.append(("write", key))
        self.inner.write(key, data)

    def upload(self, key, path):
        self.inner.upload(key, path)

    def download(self, key, path):
        self.inner.download(key, path)

    def list(self, prefix):
        return self.inner.list(prefix)

    def delete(self, key):
        self.calls.append(("delete", key))
        self.inner.delete(key)

    def read_pointer(self, key):
        return self.inner.read_pointer(key)

    def write_pointer(self, key, data, expected_tag):
        self.calls.append(("write_pointer", key))
        return self.inner.write_pointer(key, data, expected_tag)

    def check(self):
        self.inner.check()


@pytest.mark.parametrize("keep", [1, 3])
def test_checkpoints_keep_last_k_and_prune_after_latest_moved(backend, keep):
    store, raw = backend
    recording = Recording(store)
    run = RunStore(recording, RUN, keep=keep)
    assert run.load_checkpoint() is None
    assert run.latest_step() is None
    keys = []
    for step in range(10, 70, 10):
        recording.calls.clear()
        keys.append(run.save_checkpoint(step, payload(step)))
        latest = raw.assert_latest_complete()
        assert (latest["key"], latest["step"], latest["sha256"]) == (keys[-1], step, digest(payload(step)))
        assert [entry["key"] for entry in latest["history"]] == keys[-keep:-1][::-1]
        assert raw.checkpoints() == sorted(keys[-keep:])
        # the object first, then LATEST, then (only then) the deletes
        kinds = [kind for kind, _ in recording.calls]
        assert kinds[:2] == ["write", "write_pointer"] and set(kinds[2:]) <= {"delete"}
        assert [key for _, key in recording.calls[2:]] == ([keys[-keep - 1]] if len(keys) > keep else [])
        assert RunStore(store, RUN).load_checkpoint() == payload(step)
    assert run.latest_step() == 60


def test_checkpoint_with_torch_state_dict(backend):
    store, _ = backend
    model = torch.nn.Linear(4, 3)
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "step": 7}, buffer)
    RunStore(store, RUN).save_checkpoint(7, buffer.getvalue())
    loaded = torch.load(io.BytesIO(RunStore(store, RUN).load_checkpoint()), weights_only=True)
    assert loaded["step"] == 7
    assert all(torch.equal(loaded["model"][name], value) for name, value in model.state_dict().items())


def test_no_pruning_when_latest_does_not_move(backend):
    store, raw = backend
    writer = RunStore(store, RUN, keep=1)
    writer.save_checkpoint(10, payload(10))
    stale = RunStore(Recording(store), RUN, keep=1)
    assert stale.load_checkpoint() == payload(10)
    writer.save_checkpoint(20, payload(20))
    with pytest.raises(PointerConflict):
        stale.save_checkpoint(30, payload(30))
    # no pruning; the loser deletes only its own object, which LATEST never named
    calls = stale.store.calls
    assert [kind for kind, _ in calls] == ["write", "write_pointer", "delete"] and calls[0][1] == calls[2][1]
    assert raw.get(calls[0][1]) is None
    assert raw.assert_latest_complete()["step"] == 20


def flip_bytes(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes(b ^ 0xFF for b in data[middle : middle + 8]) + data[middle + 8 :]


def test_corrupted_latest_checkpoint_falls_back(backend):
    store, raw = backend
    run = RunStore(store, RUN, keep=3)
    keys = {step: run.save_checkpoint(step, payload(step)) for step in (10, 20, 30)}
    raw.put(keys[30], flip_bytes(payload(30)))
    lines = []
    resumed = RunStore(store, RUN, keep=3)
    assert resumed.load_checkpoint(lines.append) == payload(20)
    assert len(lines) == 1 and keys[30] in lines[0] and "sha256" in lines[0] and keys[20] in lines[0]
    # the resumed run continues from 20 and may checkpoint below the bad step; the bad entry leaves the history
    resumed.save_checkpoint(25, payload(25, salt="resumed"))
    latest = raw.assert_latest_complete()
    assert [latest["step"], *(entry["step"] for entry in latest["history"])] == [25, 20, 10]
    assert RunStore(store, RUN).load_checkpoint() == payload(25, salt="resumed")
    assert keys[30] in raw.checkpoints()  # above LATEST's step: left alone for now
    resumed.save_checkpoint(30, payload(30, salt="resumed"))
    latest = raw.assert_latest_complete()
    assert raw.checkpoints() == sorted(entry["key"] for entry in [latest, *latest["history"]])
    assert keys[30] not in raw.checkpoints()


def test_kept_checkpoints_are_the_verified_ones_latest_names_oldest_first(backend):
    store, raw = backend
    run = RunStore(store, RUN, keep=3)
    assert run.kept_checkpoints() == []
    keys = {step: run.save_checkpoint(step, payload(step)) for step in (10, 20, 30, 40)}
    assert RunStore(store, RUN).kept_checkpoints() == [(step, payload(step)) for step in (20, 30, 40)]
    raw.put(keys[30], flip_bytes(payload(30)))
    raw.delete(keys[20])
    assert RunStore(store, RUN).kept_checkpoints() == [(40, payload(40))]
    raw.put(f"{RUN}/{LATEST}", json.dumps({"key": "elsewhere/ckpt/step-00000040-0.pt"}).encode())
    with pytest.raises(CheckpointError, match="unreadable"):
        RunStore(store, RUN).kept_checkpoints()


def test_missing_latest_checkpoint_falls_back(backend):
    store, raw = backend
    run = RunStore(store, RUN)
    keys = [run.save_checkpoint(step, payload(step)) for step in (10, 20)]
    raw.delete(keys[1])
    lines = []
    assert RunStore(store, RUN).load_checkpoint(lines.append) == payload(10)
    assert len(lines) == 1 and keys[1] in lines[0] and "missing" in lines[0]


def test_no_usable_checkpoint_is_an_error(backend):
    store, raw = backend
    run = RunStore(store, RUN)
    keys = [run.save_checkpoint(step, payload(step)) for step in (10, 20)]
    raw.put(keys[0], b"garbage")
    raw.delete(keys[1])
    lines = []
    with pytest.raises(CheckpointError, match=RUN) as failure:
        RunStore(store, RUN).load_checkpoint(lines.append)
    assert len(lines) == 1 and "falling back" in lines[0]  # the last failure is in the error's one line only
    assert f"{keys[1]} is missing" in str(failure.value) and f"{keys[0]} fails its sha256 check" in str(failure.value)


def test_unreadable_latest_is_an_error(backend):
    store, raw = backend
    RunStore(store, RUN).save_checkpoint(10, payload(10))
    raw.put(f"{RUN}/{LATEST}", b'{"key": "truncated')
    with pytest.raises(CheckpointError, match="LATEST"):
        RunStore(store, RUN).load_checkpoint()
    assert RunStore(store, RUN).latest_step() is None


def test_uncommitted_checkpoint_is_ignored(backend):
    """Killed between the object and the first LATEST: there is no checkpoint, the run starts fresh."""
    store, raw = backend
    raw.put(f"{RUN}/ckpt/step-00000010-0123456789ab.pt", payload(10))
    lines = []
    run = RunStore(store, RUN, keep=2)
    assert run.load_checkpoint(lines.append) is None
    assert len(lines) == 1 and "uncommitted" in lines[0]
    run.save_checkpoint(10, payload(10, salt="fresh"))
    run.save_checkpoint(20, payload(20, salt="fresh"))
    assert raw.checkpoints() == [raw.latest()["history"][0]["key"], raw.latest()["key"]]


def test_pruning_spares_newer_objects_not_named_by_latest(backend):
    """An object above LATEST's step may be another writer's, about to be promoted; older strays go."""
    store, raw = backend
    newer, older = f"{RUN}/ckpt/step-00000099-0123456789ab.pt", f"{RUN}/ckpt/step-00000005-0123456789ab.pt"
    raw.put(newer, b"another writer's")
    raw.put(older, b"a killed attempt's")
    run = RunStore(store, RUN, keep=1)
    keys = [run.save_checkpoint(step, payload(step)) for step in (10, 20)]
    assert raw.checkpoints() == [keys[1], newer]


# --- both backends: a second, stale writer --------------------------------------------------------------------


@pytest.mark.parametrize("stale_step", [5, 10])
@pytest.mark.parametrize("initial", [False, True], ids=["if-none-match", "if-match"])
def test_stale_writer_cannot_move_latest_backwards(backend, stale_step, initial):
    store, raw = backend
    a, b = RunStore(store, RUN), RunStore(store, RUN)
    if initial:
        a.save_checkpoint(1, payload(1))
    assert a.load_checkpoint() == b.load_checkpoint()  # both read the same LATEST (or none)
    a.save_checkpoint(10, payload(10, salt="A"))
    with pytest.raises(PointerConflict):
        b.save_checkpoint(stale_step, payload(stale_step, salt="B"))
    latest = raw.assert_latest_complete()
    assert (latest["step"], latest["sha256"]) == (10, digest(payload(10, salt="A")))
    lines = []
    assert RunStore(store, RUN).load_checkpoint(lines.append) == payload(10, salt="A")
    assert lines == []  # B's object did not damage A's checkpoint
    with pytest.raises(PointerConflict):  # B stays stale
        b.save_checkpoint(20, payload(20, salt="B"))
    a.save_checkpoint(20, payload(20, salt="A"))  # A goes on, and prunes B's orphans below its step
    assert raw.assert_latest_complete()["step"] == 20


def test_writer_that_never_read_latest_cannot_move_it_backwards(backend):
    store, raw = backend
    RunStore(store, RUN).save_checkpoint(10, payload(10))
    with pytest.raises(PointerConflict, match="step 10"):
        RunStore(store, RUN).save_checkpoint(5, payload(5))
    assert raw.latest()["step"] == 10


# --- both backends: config guard --------------------------------------------------------------------------------

CONFIG = {"train": {"lr": 1e-4, "iterations": 40, "betas": (0.0, 0.999)}, "sgld": {"steps": 20}, "seed": 0}


def test_claim_config_guard(backend):
    store, raw = backend
    run = RunStore(store, RUN)
    run.claim(CONFIG, "hash-a")
    written = json.loads(raw.get(f"{RUN}/config.json"))
    assert written["config_hash"] == "hash-a" and written["config"]["sgld"] == {"steps": 20}
    run.claim(CONFIG, "hash-a")
    RunStore(store, RUN).claim(CONFIG, "hash-a")
    run.save_checkpoint(10, payload(10))  # a run with a committed checkpoint keeps its config
    changed = {**CONFIG, "train": {**CONFIG["train"], "lr": 2e-4}, "sgld": {"steps": 40}, "new": 1}
    with pytest.raises(UserError) as info:
        RunStore(store, RUN).claim(changed, "hash-b")
    message = str(info.value)
    assert "\n" not in message and "hash-a" in message and "hash-b" in message
    assert "(changed: new, sgld.steps, train.lr)" in message  # betas: a tuple in memory, a list in JSON
    raw.put(f"{RUN}/config.json", b"{not json")
    with pytest.raises(UserError, match="unreadable"):
        RunStore(store, RUN).claim(CONFIG, "hash-a")


def test_a_run_without_checkpoints_can_be_claimed_again_with_another_config(backend):
    store, raw = backend
    RunStore(store, RUN).claim(CONFIG, "hash-a")
    raw.put(f"{RUN}/metrics.jsonl", b'{"step": 1}\n')  # what a run that crashed before its first checkpoint leaves
    messages = []
    RunStore(store, RUN).claim({**CONFIG, "sgld": {"steps": 40}}, "hash-b", messages.append)
    assert json.loads(raw.get(f"{RUN}/config.json"))["config_hash"] == "hash-b"
    assert store.list(f"{RUN}/") == [f"{RUN}/config.json"]  # the leftovers of the failed start are gone
    assert len(messages) == 1 and "never committed a checkpoint" in messages[0]


# --- S3: addressing, attempts, unreachable endpoint, missing bucket -------------------------------------------


def test_path_style_addressing_works(s3_bucket, monkeypatch):
    monkeypatch.setenv("CLEL_S3_ADDRESSING", "path")
    store = S3Store(f"s3://{s3_bucket}")
    store.check()
    store.write("k", b"v")
    assert store.read("k") == b"v" and store.list("") == ["k"]


def test_bad_max_attempts(s3_endpoint, monkeypatch):
    monkeypatch.setenv("CLEL_S3_MAX_ATTEMPTS", "many")
    with pytest.raises(UserError, match="CLEL_S3_MAX_ATTEMPTS"):
        open_store("s3://bucket")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_endpoint(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{closed_port()}")
    started = time.monotonic()
    with pytest.raises(UserError, match="cannot reach") as info:
        open_store("s3://bucket/prefix").check()
    assert time.monotonic() - started < 10
    assert "\n" not in str(info.value) and "127.0.0.1" in str(info.value)


def test_missing_bucket(s3_endpoint):
    started = time.monotonic()
    with pytest.raises(UserError, match="bucket 'no-such-bucket' does not exist") as info:
        open_store("s3://no-such-bucket/prefix").check()
    assert time.monotonic() - started < 10
    assert "\n" not in str(info.value)


# --- S3 through the flaky proxy ---------------------------------------------------------------------------------


@pytest.fixture
def proxied(s3_bucket, s3_server, monkeypatch):
    """A FlakyProxy in front of the moto server, AWS_ENDPOINT_URL_S3 pointing at it; yields (proxy, bucket)."""
    monkeypatch.setenv("CLEL_S3_MAX_ATTEMPTS", "4")
    with FlakyProxy(s3_server, max_consecutive=2) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)
        yield proxy, s3_bucket


def to_latest(request) -> bool:
    return request.method == "PUT" and request.path.split("?")[0].endswith("/ckpt/LATEST")


@pytest.mark.parametrize("fate", ["drop_response", "cut_response"])
def test_retried_conditional_put_that_landed_is_not_a_conflict(proxied, s3_server, fate):
    proxy, bucket = proxied
    store = S3Store(f"s3://{bucket}/p")
    raw = Raw(store, s3_server)
    run = RunStore(store, RUN)
    for step in (10, 20):  # If-None-Match, then If-Match
        rule = proxy.add_rule(to_latest, fate)
        run.save_checkpoint(step, payload(step))
        assert rule.times == 0, "the fault was not injected"
        latest = raw.assert_latest_complete()
        assert latest["step"] == step
    assert [entry[2] for entry in proxy.faults_seen()] == [fate, fate]
    assert RunStore(store, RUN).load_checkpoint() == payload(20)


def test_failed_pointer_write_promotes_nothing(proxied, s3_server):
    """The store fails every PUT of LATEST: the save raises, LATEST keeps the last complete checkpoint."""
    proxy, bucket = proxied
    store = S3Store(f"s3://{bucket}/p")
    raw = Raw(store, s3_server)
    RunStore(store, RUN).save_checkpoint(10, payload(10))
    proxy.add_rule(to_latest, "error", times=4)
    with pytest.raises(ClientError):
        RunStore(store, RUN).save_checkpoint(20, payload(20))
    assert raw.assert_latest_complete()["step"] == 10
    assert len(raw.checkpoints()) == 2  # the new object is there, but not promoted
    restarted = RunStore(store, RUN)
    assert restarted.load_checkpoint() == payload(10)
    restarted.save_checkpoint(20, payload(20, salt="again"))
    assert raw.assert_latest_complete()["sha256"] == digest(payload(20, salt="again"))


def test_cut_checkpoint_upload_promotes_nothing(proxied, s3_server):
    """Every attempt to upload the checkpoint object is cut off mid-body: LATEST does not move."""
    proxy, bucket = proxied
    store = S3Store(f"s3://{bucket}/p")
    raw = Raw(store, s3_server)
    RunStore(store, RUN).save_checkpoint(10, payload(10))
    proxy.add_rule(lambda r: r.method == "PUT" and "/ckpt/step-" in r.path, "cut_request", times=4)
    with pytest.raises(ConnectionClosedError):
        RunStore(store, RUN).save_checkpoint(20, payload(20, size=300_000))
    assert raw.assert_latest_complete()["step"] == 10
    assert RunStore(store, RUN).load_checkpoint() == payload(10)


def test_flaky_store_run_ends_correct(proxied, s3_server):
    """20 checkpoints of a few hundred KB through a proxy that fails ~30% of the requests in every way it can."""
    proxy, bucket = proxied
    proxy.rate, proxy.seed = 0.3, 1234
    store = S3Store(f"s3://{bucket}/p")
    raw = Raw(store, s3_server)
    rng = random.Random(0)
    run = RunStore(store, RUN, keep=3)
    assert run.load_checkpoint() is None
    saved = []
    for step in range(1, 21):
        data = rng.randbytes(rng.randint(100_000, 400_000))
        run.save_checkpoint(step, data)
        saved.append(data)
        latest = raw.assert_latest_complete()
        assert (latest["step"], latest["sha256"]) == (step, digest(data))
        if step % 4 == 0:  # a restarted process resumes exactly the last checkpoint
            run = RunStore(store, RUN, keep=3)
            assert run.load_checkpoint() == data
    assert RunStore(store, RUN).load_checkpoint() == saved[-1]
    assert len(raw.checkpoints()) == 3
    fates = {fate for _, _, fate in proxy.faults_seen()}
    assert fates == set(FAULTS), f"not every kind of fault was injected: {fates}"
    assert len(proxy.faults_seen()) > 20
