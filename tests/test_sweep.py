"""`python -m runner sweep`: experiments x grid points x seeds on this machine, skipping finished runs, continuing
after Ctrl-C; the one planner (runner.launch.plan) and the run identity of a point."""

import csv
import io
import json
import os
import signal
import subprocess
import time

import pytest
from runs import ROOT, SMALL, edited_config, result_metrics, run_cli, run_id_of, runner_command

from runner.config import ExperimentsFile, parse_overrides
from runner.errors import EXIT_PREEMPTED, UserError
from runner.launch.plan import parse_grid, plan_runs
from runner.store import RunStore, open_store
from runner.sweep import finished_runs

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


def test_plan_resolves_every_run_first_and_refuses_bad_names():
    experiments = ExperimentsFile(ROOT / "experiments.toml")
    plan = plan_runs(experiments, "tiny", ["baseline", "moco"], [3, 4], {})
    assert [run.run_id for run in plan] == ["baseline-tiny-s3", "baseline-tiny-s4", "moco-tiny-s3", "moco-tiny-s4"]
    assert [run.config.run_id for run in plan] == [run.spec.resolve().run_id for run in plan]
    everything = plan_runs(experiments, "tiny", None, None, {})
    assert len(everything) == len(experiments.experiments) * len(experiments.seeds())
    for names, seeds, message in [
        (["nope"], [0], "unknown experiment"),
        (["moco", "moco"], [0], "--exp: moco is listed twice"),
    ]:
        with pytest.raises(UserError, match=message):
            plan_runs(experiments, "tiny", names, seeds, {})
    with pytest.raises(UserError, match="--seeds: 1 is listed twice"):
        plan_runs(experiments, "tiny", ["moco"], [1, 1], {})


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


# --- grid points and the run identity ------------------------------------------------------------------------


def _ids(grid: str, names: list[str] | None = None, overrides: dict | None = None, smoke: bool = False) -> list[str]:
    experiments = ExperimentsFile(ROOT / "experiments.toml")
    return [
        r.run_id for r in plan_runs(experiments, "tiny", names or ["baseline"], [0], overrides, smoke, parse_grid(grid))
    ]


@pytest.mark.parametrize(("one", "other"), [("0.1", "0.10"), ("1", "1.0"), ("0.1", "1e-1"), ("1", "1.000")])
def test_grid_values_that_differ_only_in_formatting_are_one_run(one, other):
    (first,) = _ids(f"energy.beta={one}")
    assert _ids(f"energy.beta={other}") == [first]
    assert first.startswith("baseline-tiny-g") and first.endswith("-s0")
    experiments = ExperimentsFile(ROOT / "experiments.toml")
    for text in (one, other):  # `local --set` of the same value names the same run
        assert experiments.resolve("baseline", "tiny", 0, parse_overrides(f"energy.beta={text}")).run_id == first
    with pytest.raises(UserError, match="same point"):  # both in one grid: one run listed twice
        _ids(f"energy.beta={one},{other}")


def test_a_point_is_only_what_differs_from_the_experiments_own_config():
    assert _ids("energy.beta=0.01") == ["baseline-tiny-s0"]  # baseline's own value: no point
    assert _ids("energy.beta=0.01", overrides={"sgld.noise": 0.001, "train.iterations": 600}) == ["baseline-tiny-s0"]
    assert _ids("energy.beta=0.0", ["plain_ebm"]) == ["plain_ebm-tiny-s0"]
    (beta,) = _ids("energy.beta=0.1")
    assert _ids("energy.beta=0.1", overrides={"energy.beta": 0.5}) == [beta]  # the point wins over --set
    assert _ids("energy.beta=0.01", smoke=True) == ["baseline-tiny-smoke-s0"]
    (smoke,) = _ids("energy.beta=0.1", smoke=True)
    assert smoke == beta.replace("-tiny-g", "-tiny-smoke-g")  # the same point, marked smoke
    both = _ids("energy.beta=0.01,0.1 sgld.steps=20,5")
    assert len(both) == len(set(both)) == 4 and both[0] == "baseline-tiny-s0"  # tiny's sgld.steps is 20
    experiments = ExperimentsFile(ROOT / "experiments.toml")
    cfg = experiments.resolve("baseline", "tiny", 0, {"energy.beta": 0.1, "sgld.steps": 5, "sgld.noise": 0.001})
    assert cfg.point == {"energy.beta": 0.1, "sgld.steps": 5} and cfg.run_id == both[3]


def test_runtime_settings_never_change_the_run_id():
    experiments = ExperimentsFile(ROOT / "experiments.toml")
    runtime = {
        "runtime.threads": 3,
        "runtime.checkpoint_every": 7,
        "runtime.progress": False,
        "runtime.log_every": 1,
        "runtime.keep_checkpoints": 9,
        "runtime.device": "cpu",
    }
    assert experiments.resolve("baseline", "tiny", 0, runtime).run_id == "baseline-tiny-s0"
    assert experiments.resolve("baseline", "tiny", 0, runtime).point == {}
    point = {"energy.beta": 0.1}
    assert (
        experiments.resolve("baseline", "tiny", 0, point | runtime).run_id
        == experiments.resolve("baseline", "tiny", 0, point).run_id
    )
    assert _ids("energy.beta=0.1", overrides=runtime) == _ids("energy.beta=0.1")
    assert _ids("energy.beta=0.01", overrides=runtime, smoke=True) == ["baseline-tiny-smoke-s0"]


def test_the_planner_refuses_a_runtime_axis_an_unknown_axis_and_a_point_listed_twice(tmp_path):
    experiments = ExperimentsFile(ROOT / "experiments.toml")
    for grid, message in [
        ("runtime.threads=1,2", "runtime.threads: a runtime setting"),
        ("runtime.checkpoint_every=5", "runtime.checkpoint_every: a runtime setting"),
        ("energy.betta=0.1,1", "energy.betta: unknown key"),
        ("energy.beta=0.1,0.1", "same point"),
        ("energy.beta=0.1,0.10", "same point"),
        ("energy.beta=1,1.0", "same point"),
        ("energy.beta=0.01 sgld.steps=20,5,20", "same point"),
    ]:
        with pytest.raises(UserError, match=message):
            plan_runs(experiments, "tiny", ["baseline"], [0], {}, grid=parse_grid(grid))
    with pytest.raises(UserError, match="--grid energy.beta=: expected"):
        parse_grid("energy.beta=")
    path = tmp_path / "experiments.toml"
    text = (ROOT / "experiments.toml").read_text()
    path.write_text(text.replace("seeds = [0, 1, 2]", 'seeds = [0]\ngrid = { "runtime.threads" = [1, 2] }'))
    with pytest.raises(UserError, match="runtime.threads"):  # in experiments.toml's [sweep] too
        ExperimentsFile(path)


def test_a_grid_in_experiments_toml_is_the_default(tmp_path):
    text = (ROOT / "experiments.toml").read_text()
    assert "seeds = [0, 1, 2]" in text
    path = tmp_path / "experiments.toml"
    path.write_text(text.replace("seeds = [0, 1, 2]", 'seeds = [0, 1]\ngrid = { "energy.beta" = [0.01, 0.1] }'))
    experiments = ExperimentsFile(path)
    planned = plan_runs(experiments, "tiny", ["baseline"])
    assert [r.config.energy.beta for r in planned] == [0.01, 0.01, 0.1, 0.1]
    assert [r.config.seed for r in planned] == [0, 1, 0, 1]
    assert [r.run_id for r in planned[:2]] == ["baseline-tiny-s0", "baseline-tiny-s1"]
    assert planned[2].run_id == _ids("energy.beta=0.1")[0]
    assert plan_runs(experiments, "tiny", ["baseline"], grid={})[0].run_id == "baseline-tiny-s0"  # --grid overrides


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
