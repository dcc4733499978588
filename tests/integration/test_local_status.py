"""`status --local` and `cancel --local` find a store's running runs by the lock their process holds: a store with a
real finished run and a started one whose lock a child process holds."""

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from runner.launch import local
from runner.layout import LOCK_FILE
from runner.store import RunStore, open_store
from tests.support import tiny_cfg
from tests.support.cli import TINY_RUN_ID, make_workdir, run_main

HOLD_LOCK = """
import fcntl, os, sys, time
lock = open(sys.argv[1], "a+")
fcntl.flock(lock, fcntl.LOCK_EX)
lock.truncate(0)
lock.write(f"{os.getpid()}\\n")
lock.flush()
print("locked", flush=True)
time.sleep(600)
"""


def hold_lock(lock: Path, looks_like_runner: bool) -> subprocess.Popen:
    """A child that holds the run's lock with its pid in it, as a running `local` does; with `-m runner` among its
    arguments when it should pass for one (local._is_runner reads /proc/<pid>/cmdline)."""
    extra = ["-m", "runner"] if looks_like_runner else []
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(lock), *extra], stdout=subprocess.PIPE, text=True, cwd=lock.parent
    )
    assert child.stdout.readline().strip() == "locked"
    return child


def started_run(store: Path, seed: int) -> str:
    """A run of the tiny baseline point that claimed its directory and checkpointed step 1 (of 2)."""
    cfg = tiny_cfg(seed=seed, train__iterations=2)
    run = RunStore(open_store(str(store)), cfg.run_id)
    run.claim(cfg.hashed_dict(), cfg.config_hash, lambda _: None, cfg.point)
    run.save_checkpoint(1, b"state")
    return cfg.run_id


def rows(out: str) -> dict[str, list[str]]:
    """The table of `status --local`: the cells of each run's row, by run id."""
    lines = out.splitlines()
    assert lines[0].split() == local.LOCAL_HEADER
    cells = [line.split() for line in lines[1:]]
    return {row[0]: row for row in cells if row and not row[0].endswith(":")}  # not the AUROC lines below


@pytest.fixture
def workdir(tmp_path, monkeypatch, finished_store) -> Path:
    return make_workdir(tmp_path, monkeypatch, finished_store)


@pytest.fixture
def children():
    started: list[subprocess.Popen] = []
    yield started
    for child in started:
        if child.poll() is None:
            child.kill()
        child.wait()


def test_status_local_shows_a_finished_and_a_running_run_with_its_pid(workdir, capsys, children):
    store = workdir / "runs"
    running = started_run(store, seed=1)
    child = hold_lock(store / running / LOCK_FILE, looks_like_runner=True)
    children.append(child)
    code, out, err = run_main(["status", "--local", "--store", "runs"], capsys)
    assert code == 0, err
    table = rows(out)
    assert set(table) == {TINY_RUN_ID, running}
    assert table[running][1] == "running" and table[running][-1] == str(child.pid)
    assert table[TINY_RUN_ID][1] == "finished" and table[TINY_RUN_ID][-1] == "-"
    assert f"{TINY_RUN_ID}: auroc vs inverted" in out and f"{running}: auroc" not in out
    states = {s.run_id: s for s in local.LocalRuns("runs").states([TINY_RUN_ID, running])}
    assert (states[running].running, states[running].pid, states[running].progress.checkpoint_step) == (
        True,
        child.pid,
        1,
    )
    assert states[TINY_RUN_ID].progress.result is not None and not states[TINY_RUN_ID].running
    code, out, err = run_main(["status", "--local", "--store", "runs", "--exp", "plain_ebm"], capsys)
    assert code == 0 and out.strip() == "no runs in runs", err


def test_a_lock_held_by_another_program_is_running_without_a_pid_and_is_not_stopped(workdir, capsys, children):
    store = workdir / "runs"
    running = started_run(store, seed=1)
    child = hold_lock(store / running / LOCK_FILE, looks_like_runner=False)
    children.append(child)
    assert local.lock_holder(store / running / LOCK_FILE) == (True, child.pid)
    code, out, err = run_main(["status", "--local", "--store", "runs"], capsys)
    assert code == 0, err
    assert rows(out)[running][1] == "running" and rows(out)[running][-1] == "-"  # pid not shown: not a runner
    code, out, err = run_main(["cancel", "--local", "--store", "runs"], capsys)
    assert code == 0, err
    assert "0 run(s) stopped in runs" in out
    assert child.poll() is None  # left alone


def test_cancel_local_sends_sigterm_to_the_running_process(workdir, capsys, children):
    store = workdir / "runs"
    running = started_run(store, seed=1)
    child = hold_lock(store / running / LOCK_FILE, looks_like_runner=True)
    children.append(child)
    finished_before = (store / TINY_RUN_ID / "result.json").read_bytes()
    code, out, err = run_main(["cancel", "--local", "--store", "runs"], capsys)
    assert code == 0, err
    assert f"stopped {running}" in out and "1 run(s) stopped in runs" in out
    assert child.wait(timeout=60) == -signal.SIGTERM
    assert (store / TINY_RUN_ID / "result.json").read_bytes() == finished_before
    code, out, err = run_main(["status", "--local", "--store", "runs"], capsys)
    assert code == 0, err
    assert rows(out)[running][1] == "stopped" and rows(out)[running][-1] == "-"
    code, out, _ = run_main(["cancel", "--local", "--store", "runs"], capsys)
    assert code == 0 and "0 run(s) stopped in runs" in out
