"""`python -m runner sweep`: experiments x seeds on this machine, skipping finished runs, continuing after Ctrl-C."""

import json
import os
import signal
import subprocess
import time

import pytest
from runs import ROOT, SMALL, result_metrics, run_cli, runner_command

from runner.config import ExperimentsFile
from runner.errors import EXIT_PREEMPTED, UserError
from runner.store import RunStore, open_store
from runner.sweep import finished_runs, plan_sweep

RUNS = ["baseline-tiny-s0", "baseline-tiny-s1", "plain_ebm-tiny-s0", "plain_ebm-tiny-s1"]
ITERATIONS = 30


def sweep_args(store: str, *extra: str) -> list[str]:
    matrix = ["--exp", "baseline,plain_ebm", "--seeds", "0,1", "--iterations", str(ITERATIONS)]
    return ["sweep", *matrix, "--store", store, "--set", SMALL, *extra]


def metrics(store: str) -> dict[str, dict]:
    return {run_id: result_metrics(open_store(store).read(f"{run_id}/result.json")) for run_id in RUNS}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    store = str(tmp_path_factory.mktemp("sweep"))
    first = run_cli(*sweep_args(store))
    assert first.returncode == 0, first.stderr
    return store, first


@pytest.mark.slow
def test_a_sweep_writes_every_result_and_a_summary_and_again_retrains_nothing(finished):
    store, first = finished
    assert "sweep: 4 runs (0 finished, 4 to run)" in first.stdout
    assert sorted(metrics(store)) == RUNS
    summary = (open_store(store).local_path("summary.csv")).read_text().splitlines()
    assert [line.split(",")[:3] for line in summary[1:]] == [["baseline", "tiny", "2"], ["plain_ebm", "tiny", "2"]]
    checkpoints = {run_id: RunStore(open_store(store), run_id).latest_step() for run_id in RUNS}
    results = {run_id: (open_store(store).local_path(f"{run_id}/result.json")).stat().st_mtime_ns for run_id in RUNS}
    again = run_cli(*sweep_args(store))
    assert again.returncode == 0, again.stderr
    assert "sweep: 4 runs (4 finished, 0 to run)" in again.stdout
    assert "resumed" not in again.stderr  # no run was even opened again
    assert {run_id: RunStore(open_store(store), run_id).latest_step() for run_id in RUNS} == checkpoints
    assert {r: (open_store(store).local_path(f"{r}/result.json")).stat().st_mtime_ns for r in RUNS} == results


@pytest.mark.slow
def test_an_interrupted_sweep_continues_where_it_stopped_with_the_same_results(finished, tmp_path):
    reference, _ = finished
    store = str(tmp_path / "store")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        runner_command(*sweep_args(store, "--set", "runtime.checkpoint_every=5")),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    second = RunStore(open_store(store), RUNS[1])
    deadline = time.monotonic() + 300
    while (second.latest_step() or 0) < 5:
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)  # Ctrl-C in the middle of the second run
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == EXIT_PREEMPTED, stderr
    assert "checkpointed at step" in stderr.strip().splitlines()[-1]
    assert json.loads(open_store(store).read(f"{RUNS[0]}/result.json"))["iterations"] == ITERATIONS
    assert not open_store(store).local_path(f"{RUNS[2]}/result.json").exists()  # the third never started
    resumed = run_cli(*sweep_args(store, "--set", "runtime.checkpoint_every=5"))
    assert resumed.returncode == 0, resumed.stderr
    assert "sweep: 4 runs (1 finished, 3 to run)" in resumed.stdout
    assert f"resumed {RUNS[1]} at step" in resumed.stderr
    assert metrics(store) == metrics(reference)  # checkpoint interval is runtime: the results are the same


def test_plan_resolves_every_run_first_and_refuses_bad_names():
    experiments = ExperimentsFile(ROOT / "experiments.toml")
    plan = plan_sweep(experiments, "tiny", ["baseline", "moco"], [3, 4], {})
    assert [cfg.run_id for cfg in plan.runs] == ["baseline-tiny-s3", "baseline-tiny-s4", "moco-tiny-s3", "moco-tiny-s4"]
    everything = plan_sweep(experiments, "tiny", None, None, {})
    assert len(everything.runs) == len(experiments.experiments) * len(experiments.seeds())
    for names, seeds, message in [(["nope"], [0], "unknown experiment"), (["moco", "moco"], [0], "twice")]:
        with pytest.raises(UserError, match=message):
            plan_sweep(experiments, "tiny", names, seeds, {})
    with pytest.raises(UserError, match="seed is listed twice"):
        plan_sweep(experiments, "tiny", ["moco"], [1, 1], {})


def test_a_result_of_another_config_does_not_count_as_finished(finished, tmp_path):
    reference, _ = finished
    experiments = ExperimentsFile(ROOT / "experiments.toml")
    store = open_store(reference)
    same = plan_sweep(experiments, "tiny", ["baseline"], [0], {"train.iterations": ITERATIONS, **_small()})
    other = plan_sweep(experiments, "tiny", ["baseline"], [0], {"train.iterations": ITERATIONS + 1, **_small()})
    assert finished_runs(store, same.runs) == ["baseline-tiny-s0"]
    assert finished_runs(store, other.runs) == []


def _small() -> dict:
    from runner.config import parse_overrides

    return parse_overrides(SMALL)
