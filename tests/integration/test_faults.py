"""Faults of the disk and the store meet exactly one line on stderr and their documented exit code (README.md,
"Exit codes"), and lose nothing written before: LATEST still names an intact earlier checkpoint.

- a full disk (ENOSPC from the local store's atomic writer, from the second checkpoint on): 75, and a re-run
  resumes from the first checkpoint;
- a run directory the runner may not write (chmod 0o500, or EACCES from the writer where chmod binds no one, as
  root; EPERM, EROFS): 2, naming the path and what to do;
- an S3 store that answers 503 SlowDown from the first committed checkpoint on (tests/support/flaky_proxy.py in
  front of moto): 75;
- a LATEST whose sha256 is not its checkpoint's: 2;
- a symbolic link out of the store at each place the run writes: 2, the outside untouched;
- a wrong secret key on SeaweedFS, which checks signatures: 2, naming the credentials, nothing written.

Every run but the last is in this process (runner.__main__.main); each is the two-iteration tiny run of plain_ebm
with a checkpoint at every step.
"""

import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import boto3
import pytest

import runner.atomic_file
from runner.__main__ import main
from tests.conftest import new_bucket
from tests.support import ROOT, SMALL
from tests.support.cli import run_main, snapshot
from tests.support.flaky_proxy import FlakyProxy
from tests.support.runs import local_args, run_cli, run_id_of

EXP = "plain_ebm"  # no encoder: no encoder health probes in its evaluation, the longest part of a tiny one
EVERY_STEP = "runtime.checkpoint_every=1"
RUN = run_id_of(EXP, iterations=2, extra=EVERY_STEP)


def local(store: str) -> list[str]:
    """`local` of the two-iteration tiny run, with a checkpoint at steps 1 and 2."""
    return ["local", "--exp", EXP, "--iterations", "2", "--store", store, "--set", SMALL, "--set", EVERY_STEP]


def one_line(outcome: tuple[object, str, str], code: int, pattern: str, progress: tuple[str, ...] = ()) -> str:
    """The exit code, and on stderr the run's own progress lines, if any, then exactly one line, matching the
    pattern, for the fault (no traceback, no second line about it); that line."""
    got, out, err = outcome
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in out + err, err
    assert got == code, (got, err)
    assert lines[:-1] == list(progress), err
    assert re.fullmatch(pattern, lines[-1]), lines[-1]
    return lines[-1]


def latest_local(run_dir: Path) -> dict[str, Any]:
    """LATEST of a local run, after checking that it names a present checkpoint with its sha256."""
    latest = json.loads((run_dir / "ckpt" / "LATEST").read_text())
    payload = (run_dir.parent / latest["key"]).read_bytes()
    assert hashlib.sha256(payload).hexdigest() == latest["sha256"]
    return latest


# --- a full disk ------------------------------------------------------------------------------------------------


class FullDisk:
    """runner.atomic_file's `os` and `tempfile`: the disk fills up when the `at`-th checkpoint is written, and every
    write from then on fails with ENOSPC, at the write itself, as on a real full disk."""

    def __init__(self, at: int = 2, error: int = errno.ENOSPC):
        self.at, self.error, self.checkpoints, self.full = at, error, 0, False

    def install(self, monkeypatch) -> None:
        monkeypatch.setattr(runner.atomic_file, "os", _Module(os, fdopen=self.fdopen))
        monkeypatch.setattr(runner.atomic_file, "tempfile", _Module(runner.atomic_file.tempfile, mkstemp=self.mkstemp))

    def mkstemp(self, *args: Any, **kwargs: Any) -> tuple[int, str]:
        fd, path = tempfile.mkstemp(*args, **kwargs)
        if Path(path).parent.name == "ckpt" and Path(path).name.startswith(".step-"):
            self.checkpoints += 1
            self.full = self.full or self.checkpoints >= self.at
        return fd, path

    def fdopen(self, fd: int, *args: Any, **kwargs: Any):
        handle = os.fdopen(fd, *args, **kwargs)
        return _FailingWrites(handle, self.error) if self.full else handle


class _Module:
    """A module with some of its functions replaced (the rest, and `__wrapped__`, the module's own)."""

    def __init__(self, module: Any, **replaced: Any):
        self.__wrapped__ = module
        self.__dict__.update(replaced)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__wrapped__, name)


class _FailingWrites:
    def __init__(self, handle, error: int):
        self.handle, self.error = handle, error

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.handle.close()

    def write(self, data: bytes) -> int:
        raise OSError(self.error, os.strerror(self.error))

    def flush(self) -> None:
        self.handle.flush()

    def fileno(self) -> int:
        return self.handle.fileno()


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """One CLEL_CACHE for the module's runs (the FID reference statistics are computed once)."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def workdir(tmp_path, monkeypatch, cache) -> Path:
    """cwd with the repository's experiments.toml; the module's cache, two S3 attempts."""
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(ROOT / "experiments.toml", work / "experiments.toml")
    monkeypatch.chdir(work)
    monkeypatch.setenv("CLEL_CACHE", str(cache))
    monkeypatch.setenv("CLEL_S3_MAX_ATTEMPTS", "2")
    monkeypatch.delenv("CLEL_CONFIG_HASH", raising=False)
    return work


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory, cache) -> Path:
    """A local store whose run stopped at a full disk after its first checkpoint (LATEST at step 1 of 2); tests copy
    it."""
    store = tmp_path_factory.mktemp("interrupted") / "runs"
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("CLEL_CACHE", str(cache))
        monkeypatch.delenv("CLEL_CONFIG_HASH", raising=False)
        FullDisk().install(monkeypatch)
        assert main([*local(str(store)), "--config", str(ROOT / "experiments.toml")]) == 75
    assert latest_local(store / RUN)["step"] == 1
    return store


@pytest.fixture
def store(workdir, interrupted) -> Path:
    """A copy of the interrupted store as runs/ in the working directory."""
    shutil.copytree(interrupted, workdir / "runs")
    return workdir / "runs"


def test_a_full_disk_at_the_second_checkpoint_is_75_and_a_rerun_resumes(workdir, monkeypatch, capsys):
    store = workdir / "runs"
    disk = FullDisk()
    disk.install(monkeypatch)
    outcome = run_main(local("runs"), capsys)
    path = re.escape(f"{store.resolve()}/{RUN}/ckpt/step-00000002-")
    one_line(
        outcome,
        75,
        f"no space left writing {path}[0-9a-f]{{12}}\\.pt: free space \\(or use another --store\\); "
        "the run resumes from its last checkpoint when started again",
    )
    assert disk.checkpoints == 2
    latest = latest_local(store / RUN)
    assert (latest["step"], latest["history"]) == (1, [])
    assert [p.name for p in (store / RUN / "ckpt").glob("step-*")] == [Path(latest["key"]).name]
    assert not [p for p in store.rglob("*.tmp")]  # no temporary file left behind
    assert not (store / RUN / "result.json").exists()
    monkeypatch.setattr(runner.atomic_file, "os", os)  # space again
    monkeypatch.setattr(runner.atomic_file, "tempfile", tempfile)
    code, _, err = run_main(local("runs"), capsys)
    assert code == 0, err
    assert f"resumed {RUN} at step 1" in err
    latest = latest_local(store / RUN)
    assert latest["step"] == 2 and [entry["step"] for entry in latest["history"]] == [1]
    assert json.loads((store / RUN / "result.json").read_text())["iterations"] == 2


# --- a run directory that is not writable -------------------------------------------------------------------------


@pytest.mark.parametrize("error", [errno.EACCES, errno.EPERM, errno.EROFS], ids=["EACCES", "EPERM", "EROFS"])
def test_a_run_directory_that_is_not_writable_is_2_naming_the_path(store, monkeypatch, capsys, error):
    """EACCES: the run's folders chmod 0o500 (the writer answers as the kernel would where chmod binds no one, as
    root); EPERM (an immutable folder) and EROFS (a read-only mount) from the writer."""
    run_dir = store / RUN
    before = snapshot(store)
    folders = [run_dir, *[p for p in run_dir.rglob("*") if p.is_dir()]]
    for folder in folders:
        folder.chmod(0o500)
    try:
        emulate = error != errno.EACCES
        try:
            (run_dir / "ckpt" / "probe").write_bytes(b"")
            (run_dir / "ckpt" / "probe").unlink()
            emulate = True  # chmod binds no one here
        except PermissionError:
            pass
        if emulate:
            refused = {str(folder.resolve()) for folder in folders}

            def mkstemp(*args: Any, dir: str, **kwargs: Any) -> tuple[int, str]:  # noqa: A002 - mkstemp's own name
                if str(Path(dir).resolve()) in refused:
                    raise OSError(error, os.strerror(error))
                return tempfile.mkstemp(*args, dir=dir, **kwargs)

            monkeypatch.setattr(runner.atomic_file, "tempfile", _Module(runner.atomic_file.tempfile, mkstemp=mkstemp))
        outcome = run_main(local("runs"), capsys)
    finally:
        for folder in folders:
            folder.chmod(0o755)
    path = re.escape(f"{run_dir.resolve()}/ckpt/step-00000002-")
    one_line(
        outcome,
        2,
        f"error: cannot write {path}[0-9a-f]{{12}}\\.pt \\({re.escape(os.strerror(error))}\\): make it writable or "
        "use another --store",
        progress=(f"resumed {RUN} at step 1",),
    )
    assert latest_local(run_dir)["step"] == 1
    assert snapshot(store) == before


# --- an S3 store that slows down ------------------------------------------------------------------------------------


def test_an_s3_store_answering_slowdown_after_the_first_checkpoint_is_75(workdir, moto_server, monkeypatch, capsys):
    bucket = "test-faults-slowdown"
    remove = new_bucket(moto_server, bucket)
    try:
        with FlakyProxy(moto_server) as proxy:
            monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)

            def throttled(request) -> bool:  # every PUT once the first checkpoint is committed
                committed = ("PUT", f"/{bucket}/runs/{RUN}/ckpt/LATEST", "pass")
                return request.method == "PUT" and committed in [(m, p.split("?")[0], f) for m, p, f in proxy.log]

            proxy.add_rule(throttled, "error", times=10**6, error=(503, "SlowDown"))
            outcome = run_main(local(f"s3://{bucket}/runs"), capsys)
            faults = proxy.faults_seen()
        line = one_line(
            outcome,
            75,
            r"store unavailable: .*An error occurred \(SlowDown\) when calling the PutObject operation.*; the run "
            "resumes from its last checkpoint when started again",
        )
        assert f"{bucket}/runs/{RUN}/" in line
        assert faults and all(method == "PUT" and fate == "error" for method, _, fate in faults)
        client = boto3.client("s3", endpoint_url=moto_server)
        latest = json.loads(client.get_object(Bucket=bucket, Key=f"runs/{RUN}/ckpt/LATEST")["Body"].read())
        payload = client.get_object(Bucket=bucket, Key=f"runs/{latest['key']}")["Body"].read()
        assert (latest["step"], hashlib.sha256(payload).hexdigest()) == (1, latest["sha256"])
        keys = {item["Key"] for item in client.list_objects_v2(Bucket=bucket)["Contents"]}
        assert f"runs/{RUN}/result.json" not in keys
    finally:
        remove()


# --- a LATEST that does not vouch for its checkpoint ----------------------------------------------------------------


def test_a_latest_whose_sha256_is_not_its_checkpoints_is_2(store, capsys):
    pointer = store / RUN / "ckpt" / "LATEST"
    latest = json.loads(pointer.read_text())
    pointer.write_text(json.dumps(latest | {"sha256": "0" * 64}))
    before = snapshot(store)
    one_line(
        run_main(local("runs"), capsys),
        2,
        f"error: cannot resume {RUN}: no checkpoint of {RUN} in {re.escape(str(store.resolve()))} passes its sha256 "
        f"check \\({re.escape(latest['key'])} fails its sha256 check\\)",
    )
    assert snapshot(store) == before  # the checkpoint is kept, nothing else written


# --- symbolic links out of the store --------------------------------------------------------------------------------

# (the entry in the run's directory replaced or planted, whether its target is a directory)
LINKS = {
    "run-directory": ("", True),
    "ckpt": ("ckpt", True),
    "evals": ("evals", True),
    "config.json": ("config.json", False),
    "LATEST": ("ckpt/LATEST", False),
    "a-checkpoint": ("ckpt/step-00000002-000000000000.pt", False),
    "metrics.jsonl": ("metrics.jsonl", False),
    "events": ("events.out.tfevents.1.host.1.0", False),
    "result.json": ("result.json", False),
    "samples.png": ("samples.png", False),
    "lock": (".lock", False),
}


@pytest.mark.parametrize("name", LINKS)
def test_a_symbolic_link_out_of_the_store_is_2_and_the_outside_stays_untouched(store, tmp_path, capsys, name):
    where, is_dir = LINKS[name]
    outside = tmp_path / "outside"
    outside.mkdir()
    link = store / RUN / where if where else store / RUN
    if link.is_dir():
        shutil.rmtree(link)
    elif link.exists():
        link.unlink()
    if name == "events":  # the run's own events file too
        for events in (store / RUN).glob("events.out.tfevents.*"):
            events.unlink()
    link.symlink_to(outside if is_dir else outside / link.name, target_is_directory=is_dir)
    before = snapshot(store)
    relative = re.escape(f"{RUN}/{where}" if where else RUN)
    one_line(run_main(local("runs"), capsys), 2, f"error: store {re.escape(str(store.resolve()))}: {relative} is a .*")
    assert list(outside.iterdir()) == []
    assert snapshot(store) == before


# --- wrong credentials -----------------------------------------------------------------------------------------


def test_a_wrong_secret_on_seaweedfs_is_2_naming_the_credentials_and_writes_nothing(seaweedfs_server, tmp_path):
    bucket = "test-faults-wrong-secret"
    remove = new_bucket(seaweedfs_server, bucket)
    try:
        env = {
            "AWS_ENDPOINT_URL_S3": seaweedfs_server,
            "AWS_SECRET_ACCESS_KEY": "not-the-secret",
            "CLEL_CACHE": str(tmp_path / "cache"),
            "CLEL_S3_MAX_ATTEMPTS": "2",
        }
        done = run_cli(*local_args(f"s3://{bucket}/runs", 2, EXP, EVERY_STEP), env=env, timeout=300)
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stdout + done.stderr
        assert len(lines) == 1, done.stderr
        assert re.fullmatch(
            rf"error: store s3://{bucket}/runs at {re.escape(seaweedfs_server)}: access denied \(403\): check the S3 "
            r"credentials \(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_SHARED_CREDENTIALS_FILE\) and the "
            "bucket's permissions",
            lines[0],
        ), lines[0]
        assert "not-the-secret" not in done.stdout + done.stderr
        listed = boto3.client("s3", endpoint_url=seaweedfs_server).list_objects_v2(Bucket=bucket)
        assert listed.get("KeyCount", 0) == 0 and "Contents" not in listed
    finally:
        remove()
