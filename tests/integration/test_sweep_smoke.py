"""`sweep --smoke` (issue 21): one experiment and one seed make one smoke run, in this process, whose run id carries
the smoke marker, whose result.json says smoke and which summarize groups apart (`tiny-smoke`); the real run of the
same command without --smoke has another id and is not taken as finished by it."""

import csv
import io
import json
from contextlib import redirect_stderr, redirect_stdout

import pytest

from runner.__main__ import main
from runner.config import ExperimentsFile, parse_overrides
from runner.launch.sweep import finished_runs
from runner.plan.planner import plan_runs
from runner.store import open_store
from tests.support import ROOT

SMOKE_RUN_ID = "baseline-tiny-smoke-s0"  # [smoke] over tiny and nothing else: no point in the id
REAL_RUN_ID = "baseline-tiny-s0"
RUNTIME = "runtime.progress=false runtime.threads=1"  # runtime.* is no part of a run's identity


@pytest.fixture(scope="module")
def smoke_sweep(tmp_path_factory):
    """`sweep --smoke --exp baseline --seeds 0` on an empty store, in this process: (store, stdout, stderr)."""
    store = tmp_path_factory.mktemp("smoke") / "runs"
    out, err = io.StringIO(), io.StringIO()
    argv = ["sweep", "--smoke", "--exp", "baseline", "--seeds", "0", "--store", str(store), "--set", RUNTIME]
    with pytest.MonkeyPatch.context() as patch, redirect_stdout(out), redirect_stderr(err):
        patch.setenv("CLEL_CACHE", str(store.parent / "cache"))
        patch.delenv("CLEL_CONFIG_HASH", raising=False)
        code = main(argv)
    assert code == 0, err.getvalue()
    return store, out.getvalue(), err.getvalue()


def test_sweep_smoke_writes_one_run_marked_smoke_in_its_id_and_its_result(smoke_sweep):
    """One run, <experiment>-<profile>-smoke-s<seed>, whose result.json says smoke with [smoke]'s 5 encoder-only
    steps and 10 joint ones (15 steps);
    its result line says it is no result; no real run's directory is made."""
    store, out, err = smoke_sweep
    assert "sweep: 1 runs (0 finished, 1 to run)" in out
    assert [path.name for path in store.iterdir() if path.name.startswith("baseline-")] == [SMOKE_RUN_ID]
    result = json.loads((store / SMOKE_RUN_ID / "result.json").read_text())
    assert (result["run_id"], result["smoke"], result["iterations"]) == (SMOKE_RUN_ID, True, 5 + 10)
    assert (result["experiment"], result["profile"], result["seed"], result["point"]) == ("baseline", "tiny", 0, {})
    (line,) = [line for line in err.splitlines() if line.startswith(f"{SMOKE_RUN_ID}: fid ")]
    assert line.endswith("(smoke run: not a result)")


def test_summarize_after_a_smoke_sweep_groups_it_as_smoke(smoke_sweep):
    """summary.csv's one row is the tiny-smoke group, never plain tiny."""
    store, _, _ = smoke_sweep
    rows = list(csv.DictReader(io.StringIO((store / "summary.csv").read_text())))
    assert [(row["experiment"], row["profile"], row["n_seeds"]) for row in rows] == [("baseline", "tiny-smoke", "1")]


def test_the_real_run_of_the_same_sweep_has_its_own_id_and_is_not_finished_by_the_smoke_run(smoke_sweep):
    """The planner of the same sweep without --smoke plans baseline-tiny-s0, which the smoke result does not finish;
    with --smoke it plans the smoke run, which it does."""
    store, _, _ = smoke_sweep
    experiments = ExperimentsFile(ROOT / "experiments.toml")
    real = plan_runs(experiments, "tiny", ["baseline"], [0], parse_overrides([RUNTIME]))
    smoke = plan_runs(experiments, "tiny", ["baseline"], [0], parse_overrides([RUNTIME]), smoke=True)
    assert [run.run_id for run in real] == [REAL_RUN_ID] and [run.run_id for run in smoke] == [SMOKE_RUN_ID]
    assert real[0].config.config_hash != smoke[0].config.config_hash
    assert finished_runs(open_store(str(store)), real) == []
    assert finished_runs(open_store(str(store)), smoke) == [SMOKE_RUN_ID]
