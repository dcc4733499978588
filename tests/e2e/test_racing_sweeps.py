"""Two sweeps started at the same moment on one store (a local directory, and each S3 server): every run is trained
and evaluated exactly once, by one of them; the other skips a run it finds held, without failing; both exit 0, and
a third sweep finds every run finished (docs/STORAGE.md, "One owner per run")."""

import json
import os
import subprocess

import boto3
import pytest

from runner.layout import METRICS_FILE, RESULT_FILE
from runner.store import open_store
from tests.support import ROOT, SMALL
from tests.support.runs import run_cli, run_id_of, runner_command

ITERATIONS = 6
SEEDS = (0, 1)
RUNS = [run_id_of("baseline", seed, ITERATIONS) for seed in SEEDS]


def sweep_args(store: str) -> list[str]:
    seeds = ",".join(str(seed) for seed in SEEDS)
    return ["sweep", "--exp", "baseline", "--seeds", seeds, "--iterations", str(ITERATIONS), "--store", store,
            "--set", SMALL]  # fmt: skip


def race(store: str) -> list[subprocess.CompletedProcess]:
    """Both sweeps started together; their completed processes."""
    env = dict(os.environ) | {"CLEL_LEASE_SECONDS": "30"}
    started = [
        subprocess.Popen(
            runner_command(*sweep_args(store)),
            cwd=ROOT,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        for _ in range(2)
    ]
    done = []
    for process in started:
        out, err = process.communicate(timeout=600)
        done.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    return done


def check_once(store: str, names: dict[str, list[str]]) -> None:
    """Each run: every step in metrics.jsonl once, one TensorBoard event file (one process evaluated it), no
    evals/ (nothing was evaluated twice)."""
    found = open_store(store)
    for run_id in RUNS:
        steps = [json.loads(line)["step"] for line in found.read(f"{run_id}/{METRICS_FILE}").decode().splitlines()]
        assert steps == sorted(set(steps)) and steps[-1] == ITERATIONS, (run_id, steps)
        assert json.loads(found.read(f"{run_id}/{RESULT_FILE}"))["run_id"] == run_id
        files = names[run_id]
        assert len([name for name in files if name.startswith("events.out.tfevents")]) == 1, files
        assert not [name for name in files if name.startswith("evals/")], files


def assert_both_succeed(results: list[subprocess.CompletedProcess]) -> None:
    for result in results:
        assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for result in results for line in result.stderr.splitlines()]
    assert not [line for line in lines if line.startswith("resumed ")]  # no run was taken over half-trained
    for run_id in RUNS:  # its result line by the sweep that trained it, and by the other if it found it finished
        assert 1 <= len([line for line in lines if line.startswith(f"{run_id}: fid ")]) <= 2
    assert all(len(line) < 300 for line in lines if "held:" in line)


@pytest.mark.slow
def test_two_sweeps_racing_on_a_local_store_run_every_run_once(tmp_path):
    store = str(tmp_path / "runs")
    assert_both_succeed(race(store))
    folders = {run_id: tmp_path / "runs" / run_id for run_id in RUNS}
    names = {
        run_id: [p.relative_to(folder).as_posix() for p in folder.rglob("*")] for run_id, folder in folders.items()
    }
    check_once(store, names)
    again = run_cli(*sweep_args(store))
    assert again.returncode == 0 and f"sweep: {len(RUNS)} runs ({len(RUNS)} finished, 0 to run)" in again.stdout


@pytest.mark.slow
def test_two_sweeps_racing_on_an_s3_store_run_every_run_once(s3_bucket):
    store = f"s3://{s3_bucket}/runs"
    assert_both_succeed(race(store))
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=s3_bucket)["Contents"]]
    names = {
        run_id: [k.removeprefix(f"runs/{run_id}/") for k in keys if k.startswith(f"runs/{run_id}/")] for run_id in RUNS
    }
    check_once(store, names)
    for run_id in RUNS:  # the losers' checkpoint objects are gone: only those LATEST names, and the lease, remain
        checkpoints = [name for name in names[run_id] if name.startswith("ckpt/step-")]
        latest = json.loads(open_store(store).read(f"{run_id}/ckpt/LATEST"))
        named = {latest["key"], *(entry["key"] for entry in latest["history"])}
        assert {f"{run_id}/{name}" for name in checkpoints} == named
    again = run_cli(*sweep_args(store))
    assert again.returncode == 0 and f"sweep: {len(RUNS)} runs ({len(RUNS)} finished, 0 to run)" in again.stdout
