"""`python -m runner sweep`: experiments x grid points x seeds on this machine, skipping finished runs (and results of
another config), continuing after Ctrl-C. The planner on its own: tests/unit/test_sweep_plan.py."""

import csv
import io
import json
import os
import signal
import subprocess
import time

import pytest

from runner.config import ExperimentsFile, parse_overrides
from runner.errors import EXIT_PREEMPTED
from runner.launch.sweep import finished_runs
from runner.layout import point_tag
from runner.plan.planner import plan_runs
from runner.store import RunStore, open_store
from tests.support import ROOT, SMALL
from tests.support.runs import edited_config, result_metrics, run_cli, run_id_of, runner_command

ITERATIONS = 30
# in the sweep's order; SMALL and --iterations are overrides, so each run id carries their point (-g<tag>-)
RUNS = [run_id_of(exp, seed, ITERATIONS) for exp in ("baseline", "plain_ebm") for seed in (0, 1)]


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
    # a sequential sweep gives one result line per finished run, as a parallel one does
    for run_id in RUNS:
        assert len([line for line in first.stderr.splitlines() if line.startswith(f"{run_id}: fid ")]) == 1
    assert sorted(metrics(store)) == sorted(RUNS) and len(set(RUNS)) == 4
    assert all("-tiny-g" in run_id for run_id in RUNS)
    summary = list(csv.DictReader(io.StringIO(open_store(store).local_path("summary.csv").read_text())))
    # one row per experiment, both seeds; the group is the profile at the runs' point ("tiny @ sgld.steps=5, ...")
    assert [(row["experiment"], row["profile"].split(" @ ")[0], row["n_seeds"]) for row in summary] == [
        ("baseline", "tiny", "2"),
        ("plain_ebm", "tiny", "2"),
    ]
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


@pytest.mark.slow  # its `finished` sweep runs in a subprocess
def test_a_result_of_another_config_does_not_count_as_finished(finished, tmp_path):
    reference, _ = finished
    store = open_store(reference)
    overrides = {"train.iterations": ITERATIONS, **parse_overrides(SMALL)}
    same = plan_runs(ExperimentsFile(ROOT / "experiments.toml"), "tiny", ["baseline"], [0], overrides)
    # the same run id with another config: experiments.toml edited since (another --set is another run id)
    edited = ExperimentsFile(edited_config(tmp_path, "sgld.noise = 0.001", "sgld.noise = 0.002"))
    other = plan_runs(edited, "tiny", ["baseline"], [0], overrides)
    assert [run.run_id for run in other] == [run.run_id for run in same] == [RUNS[0]]
    assert other[0].config.config_hash != same[0].config.config_hash
    assert finished_runs(store, same) == [RUNS[0]]
    assert finished_runs(store, other) == []
    longer = plan_runs(
        ExperimentsFile(ROOT / "experiments.toml"),
        "tiny",
        ["baseline"],
        [0],
        overrides | {"train.iterations": ITERATIONS + 1},
    )
    assert longer[0].run_id != RUNS[0] and finished_runs(store, longer) == []  # another point: not run yet


GRID = ["--exp", "baseline", "--seeds", "0,1", "--grid", "energy.beta=0.01,0.1", "--iterations", "3"]


@pytest.mark.slow
def test_a_grid_sweep_writes_a_run_per_point_and_seed_and_local_names_the_same_runs(tmp_path):
    store = str(tmp_path / "store")
    first = run_cli("sweep", *GRID, "--store", store, "--set", SMALL)
    assert first.returncode == 0, first.stderr
    assert "sweep: 4 runs (0 finished, 4 to run)" in first.stdout
    expected = {
        run_id_of(seed=seed, iterations=3, extra=f"energy.beta={beta}") for beta in (0.01, 0.1) for seed in (0, 1)
    }
    assert len(expected) == 4 and run_id_of(iterations=3, extra="energy.beta=0.01") == run_id_of(iterations=3)
    written = {p.name for p in (tmp_path / "store").iterdir() if (p / "result.json").is_file()}
    assert written == expected
    betas = {
        json.loads((tmp_path / "store" / r / "result.json").read_text())["point"].get("energy.beta") for r in written
    }
    assert betas == {None, 0.1}  # 0.01 is baseline's own value: not part of that run's point
    recorded = json.loads((tmp_path / "store" / "sweep.json").read_text())["points"]
    for r in written:  # summarize names a missing run by its point's settings, recorded under the run id's tag
        point = json.loads((tmp_path / "store" / r / "result.json").read_text())["point"]
        assert recorded[point_tag(point)] == point and r.split("-")[-2] == point_tag(point)
    results = {r: (tmp_path / "store" / r / "result.json").stat().st_mtime_ns for r in written}
    again = run_cli("sweep", *GRID, "--store", store, "--set", SMALL)
    assert again.returncode == 0, again.stderr
    assert "sweep: 4 runs (4 finished, 0 to run)" in again.stdout
    assert {r: (tmp_path / "store" / r / "result.json").stat().st_mtime_ns for r in written} == results
    run_id = run_id_of(seed=1, iterations=3, extra="energy.beta=0.1")
    local = run_cli(
        "local",
        "--exp",
        "baseline",
        "--seed",
        "1",
        "--iterations",
        "3",
        "--store",
        store,
        "--set",
        f"{SMALL} energy.beta=0.1",
    )
    assert local.returncode == 0, local.stderr
    assert f"{run_id}: already finished" in local.stderr
    assert {r: (tmp_path / "store" / r / "result.json").stat().st_mtime_ns for r in written} == results
