"""Exact resume: a run killed (SIGKILL) or preempted (SIGTERM) and started again ends bit for bit identical."""

import json
import os
import random
import signal
import subprocess
import time

import boto3
import pytest

from runner.errors import EXIT_HELD, EXIT_PREEMPTED
from runner.store import RunStore, open_store
from tests.support import ROOT
from tests.support.runs import (
    assert_states_equal,
    load_checkpoint_state,
    local_args,
    result_metrics,
    run_cli,
    run_id_of,
    runner_command,
)

pytestmark = pytest.mark.slow  # end-to-end runs in subprocesses

ITERATIONS = 40
RUN_ID = run_id_of(iterations=ITERATIONS)  # the run `local_args(..., ITERATIONS)` makes


def _final(store_uri: str) -> tuple[dict, dict]:
    store = open_store(store_uri)
    run = RunStore(store, RUN_ID)
    state = load_checkpoint_state(run.load_checkpoint())
    state.pop("wall_s")
    return state, result_metrics(store.read(run.key("result.json")))


# an S3 lease not renewed for 15 s has expired (the default is 120 s); renewed every 15/4 s, so a killed owner's
# lease holds for at least 11 s after the kill: time enough for a second process to start and find it held
LEASE_SECONDS = 15
LEASE = {"CLEL_LEASE_SECONDS": str(LEASE_SECONDS)}


def _start(store_uri: str) -> subprocess.Popen:
    return subprocess.Popen(
        runner_command(*local_args(store_uri, ITERATIONS)),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ) | LEASE,
    )


def _wait_for_step(store_uri: str, process: subprocess.Popen, at_least: int, timeout: float = 300) -> int:
    run = RunStore(open_store(store_uri), RUN_ID)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        step = run.latest_step()
        if step is not None and step >= at_least:
            return step
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError("no checkpoint appeared")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    store = str(tmp_path_factory.mktemp("uninterrupted"))
    result = run_cli(*local_args(store, ITERATIONS))
    assert result.returncode == 0, result.stderr
    return _final(store)


def _kill_and_resume(store_uri: str, seed: int) -> None:
    process = _start(store_uri)
    _wait_for_step(store_uri, process, 10)
    time.sleep(random.Random(seed).uniform(0.0, 3.0))  # a random step after the first checkpoint
    process.send_signal(signal.SIGKILL)
    process.communicate()
    killed_at = time.monotonic()
    if store_uri.startswith("s3://"):  # the killed owner's lease holds the run until it expires, then is taken over
        held = run_cli(*local_args(store_uri, ITERATIONS), env=LEASE)
        assert held.returncode == EXIT_HELD and len(held.stderr.strip().splitlines()) == 1, held.stderr
        assert held.stderr.startswith(f"held: run {RUN_ID} is held by ") and "unless renewed" in held.stderr
        time.sleep(
            max(0.0, killed_at + LEASE_SECONDS + 2.5 - time.monotonic())
        )  # the bound, plus the store clock's 1 s steps
    resumed = run_cli(*local_args(store_uri, ITERATIONS), env=LEASE)
    assert resumed.returncode == 0, resumed.stderr
    assert time.monotonic() - killed_at < 60


def test_sigkill_then_resume_is_bit_identical_local(uninterrupted, tmp_path):
    _kill_and_resume(str(tmp_path), seed=1)
    state, metrics = _final(str(tmp_path))
    expected_state, expected_metrics = uninterrupted
    assert_states_equal(state, expected_state)
    assert metrics == expected_metrics


def test_sigkill_then_resume_is_bit_identical_s3(uninterrupted, s3_bucket):
    uri = f"s3://{s3_bucket}/sweep"
    _kill_and_resume(uri, seed=2)
    state, metrics = _final(uri)
    expected_state, expected_metrics = uninterrupted
    assert_states_equal(state, expected_state)
    assert metrics == expected_metrics
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=s3_bucket)["Contents"]]
    for name in ("config.json", "metrics.jsonl", "samples.png", "result.json", "ckpt/LATEST"):
        assert f"sweep/{RUN_ID}/{name}" in keys
    assert any(k.startswith(f"sweep/{RUN_ID}/events.out.tfevents") for k in keys)


def test_sigterm_checkpoints_exits_75_and_resumes_exactly(uninterrupted, tmp_path):
    store = str(tmp_path)
    process = _start(store)
    _wait_for_step(store, process, 10)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == EXIT_PREEMPTED, stderr
    line = stderr.strip().splitlines()[-1]
    assert line.startswith(f"preempted: SIGTERM: {RUN_ID} checkpointed at step ")
    stopped_at = int(line.split("step ")[1].split(";")[0])
    assert RunStore(open_store(store), RUN_ID).latest_step() == stopped_at
    metrics_steps = [json.loads(x)["step"] for x in (tmp_path / RUN_ID / "metrics.jsonl").read_text().splitlines()]
    assert metrics_steps and max(metrics_steps) <= stopped_at
    resumed = run_cli(*local_args(store, ITERATIONS))
    assert resumed.returncode == 0, resumed.stderr
    state, metrics = _final(store)
    assert_states_equal(state, uninterrupted[0])
    assert metrics == uninterrupted[1]
    steps = [json.loads(x)["step"] for x in (tmp_path / RUN_ID / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps))  # no step logged twice after the resume


def test_corrupted_latest_checkpoint_falls_back_to_the_previous_one(tmp_path):
    store, run_id = str(tmp_path), run_id_of(iterations=20)
    first = run_cli(*local_args(store, 20))
    assert first.returncode == 0, first.stderr
    latest = json.loads((tmp_path / run_id / "ckpt" / "LATEST").read_text())
    assert latest["step"] == 20
    path = tmp_path / latest["key"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    resumed = run_cli(*local_args(store, 20), "--reeval")  # a finished run reads its checkpoint only when asked
    assert resumed.returncode == 0, resumed.stderr
    previous = latest["history"][0]["key"]
    assert f"checkpoint {latest['key']} fails its sha256 check; falling back to {previous}" in (
        resumed.stdout + resumed.stderr
    )
    assert f"resumed {run_id} at step 10" in resumed.stdout + resumed.stderr
