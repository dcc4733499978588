"""`python -m runner evaluate`: a stored run's checkpoint evaluated again gives its result.json's metrics; its
config.json is data, validated and checked against its hash before anything is loaded."""

import json
import shutil

import pytest

from runner.config import ExperimentsFile
from runner.errors import UserError
from runner.run.stored import evaluate_stored_run, stored_config
from runner.store import RunStore, open_store
from tests.support import ROOT
from tests.support.runs import local_args, result_metrics, run_cli, run_id_of

RUN_ID = run_id_of(iterations=3)  # the run `local_args(..., iterations=3)` makes
ONE_THREAD = {"runtime.threads": 1}  # the run trained and evaluated on one thread; the evaluation does too


@pytest.fixture(scope="module")
def finished_store(tmp_path_factory):
    store = tmp_path_factory.mktemp("store")
    result = run_cli(*local_args(str(store), iterations=3))
    assert result.returncode == 0, result.stderr
    return store


@pytest.mark.slow
def test_evaluating_a_finished_run_gives_its_stored_metrics(finished_store):
    before = sorted((p.relative_to(finished_store), p.stat().st_mtime_ns) for p in finished_store.rglob("*"))
    again = evaluate_stored_run(
        str(finished_store), RUN_ID, ExperimentsFile(ROOT / "experiments.toml"), ONE_THREAD, lambda _: None
    )
    stored = (finished_store / RUN_ID / "result.json").read_text()
    assert result_metrics(json.dumps(again)) == result_metrics(stored)
    assert again["iterations"] == 3 and again["config_hash"] == json.loads(stored)["config_hash"]
    after = sorted((p.relative_to(finished_store), p.stat().st_mtime_ns) for p in finished_store.rglob("*"))
    assert after == before  # nothing written


@pytest.mark.slow
def test_the_evaluate_command_prints_the_result_line(finished_store):
    result = run_cli("evaluate", "--store", str(finished_store), "--run", RUN_ID)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{RUN_ID}: fid ") and "auroc vs interpolation" in result.stdout


def copy_run(finished_store, tmp_path):
    store = tmp_path / "store"
    shutil.copytree(finished_store, store)
    return store, store / RUN_ID / "config.json"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda body: body | {"config_hash": "0123456789ab"}, "hashes to"),
        (lambda body: {**body, "config": {**body["config"], "seed": 1}}, "hashes to"),
        (lambda body: {**body, "config": {**body["config"], "sgld": {"steps": "many"}}}, "sgld"),
        (lambda body: [body], "expected"),
        (lambda body: {**body, "config": {**body["config"], "__import__": "os"}}, "__import__"),
    ],
    ids=["hash", "edited-value", "bad-type", "not-a-table", "unknown-key"],
)
def test_a_forged_config_json_is_refused(finished_store, tmp_path, edit, message):
    store, config = copy_run(finished_store, tmp_path)
    config.write_text(json.dumps(edit(json.loads(config.read_text()))))
    with pytest.raises(UserError, match=message):
        stored_config(RunStore(open_store(str(store)), RUN_ID), ExperimentsFile(ROOT / "experiments.toml"), {})


@pytest.mark.slow
def test_a_config_of_another_run_is_refused(finished_store, tmp_path):
    store, config = copy_run(finished_store, tmp_path)
    for other in (run_id_of(seed=1, iterations=3), "baseline-tiny-s1"):  # another seed; the plain run of seed 1
        (store / other).mkdir()
        shutil.copy(config, store / other / "config.json")
        with pytest.raises(UserError, match=f"not {other}'s"):
            stored_config(RunStore(open_store(str(store)), other), ExperimentsFile(ROOT / "experiments.toml"), {})


@pytest.mark.slow
def test_missing_runs_and_run_ids_are_one_line(finished_store, tmp_path):
    missing = run_id_of(seed=7, iterations=3)
    for run, message in ((missing, f"no run {missing}"), ("../etc", "not a run id")):
        result = run_cli("evaluate", "--store", str(finished_store), "--run", run)
        assert result.returncode == 2 and result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    store, _ = copy_run(finished_store, tmp_path)
    shutil.rmtree(store / RUN_ID / "ckpt")
    result = run_cli("evaluate", "--store", str(store), "--run", RUN_ID)
    assert result.returncode == 2 and "has no checkpoint" in result.stderr, result.stderr
