"""The one planner (runner.plan.planner): experiments x grid points x seeds resolved before anything runs, bad names
refused, and the run identity of a point. Sweeps that run: tests/e2e/test_sweep.py."""

import pytest

from runner.config import ExperimentsFile, parse_overrides
from runner.errors import UserError
from runner.plan.planner import parse_grid, plan_runs
from tests.support import ROOT

TEN_SEEDS = "seeds = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]"  # experiments.toml's [sweep] seeds


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
    path.write_text(text.replace(TEN_SEEDS, 'seeds = [0]\ngrid = { "runtime.threads" = [1, 2] }'))
    with pytest.raises(UserError, match="runtime.threads"):  # in experiments.toml's [sweep] too
        ExperimentsFile(path)


def test_a_grid_in_experiments_toml_is_the_default(tmp_path):
    text = (ROOT / "experiments.toml").read_text()
    assert TEN_SEEDS in text
    path = tmp_path / "experiments.toml"
    path.write_text(text.replace(TEN_SEEDS, 'seeds = [0, 1]\ngrid = { "energy.beta" = [0.01, 0.1] }'))
    experiments = ExperimentsFile(path)
    planned = plan_runs(experiments, "tiny", ["baseline"])
    assert [r.config.energy.beta for r in planned] == [0.01, 0.01, 0.1, 0.1]
    assert [r.config.seed for r in planned] == [0, 1, 0, 1]
    assert [r.run_id for r in planned[:2]] == ["baseline-tiny-s0", "baseline-tiny-s1"]
    assert planned[2].run_id == _ids("energy.beta=0.1")[0]
    assert plan_runs(experiments, "tiny", ["baseline"], grid={})[0].run_id == "baseline-tiny-s0"  # --grid overrides
