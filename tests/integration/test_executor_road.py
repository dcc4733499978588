"""`status`, `cancel` and `logs` go through the executor (runner.launch.executor), for a store on this machine
and for the cluster alike: a recording executor, put in the registry's place, sees every call and hands it on to
the real backend, whose answers the commands print."""

import json

import pytest

from runner.__main__ import main
from runner.cli.commands import Commands
from runner.errors import UserError
from runner.launch import executor as executors
from runner.launch.executor import BACKENDS, Selection, executor_class
from runner.plan.sweep_record import record_sweep
from runner.store import open_store
from tests.support import ROOT
from tests.support.kube import CLUSTER, seed_world, write_config

THREE_SEEDS = CLUSTER | {"seeds": [0, 1, 2]}


def recording(real: type, calls: list) -> type:
    """`real` with each of status, cancel and logs recorded as (backend class, verb, arguments)."""

    class Recording(real):
        def status(self, selection):
            calls.append((real.__name__, "status", selection))
            return super().status(selection)

        def cancel(self, selection):
            calls.append((real.__name__, "cancel", selection))
            return super().cancel(selection)

        def logs(self, selection, follow):
            calls.append((real.__name__, "logs", selection, follow))
            return super().logs(selection, follow)

    return Recording


@pytest.fixture
def calls(monkeypatch) -> list:
    recorded: list = []
    monkeypatch.setattr(executors, "executor_class", lambda backend: recording(executor_class(backend), recorded))
    return recorded


def test_every_registered_backend_is_an_executor():
    for backend in BACKENDS:
        cls = executor_class(backend)
        assert all(callable(getattr(cls, verb, None)) for verb in ("for_command", "submit", "status", "cancel", "logs"))


def test_the_cluster_commands_go_through_the_kubernetes_executor(tmp_path, kube, calls, capsys):
    path = write_config(tmp_path, THREE_SEEDS)
    seed_world(kube, path)
    config = str(path)
    Commands().status(exp="baseline", config=config)
    Commands().logs(exp="baseline", seed=1, config=config)
    Commands().cancel(exp="baseline", config=config)
    assert calls == [
        ("KubernetesJobs", "status", Selection("baseline")),
        ("KubernetesJobs", "logs", Selection("baseline", 1), False),
        ("KubernetesJobs", "cancel", Selection("baseline")),
    ]
    out = capsys.readouterr().out
    assert "clel-baseline-paper-s1" in out and "done\n" in out
    assert out.rstrip().splitlines()[-1].startswith("3 Job(s) deleted (") and kube.sent("DELETE")


def test_the_local_commands_go_through_the_local_executor(finished_store, calls, capsys):
    store = str(finished_store)
    run_id = next(p.name for p in finished_store.iterdir() if p.is_dir() and p.name.startswith("baseline-"))
    Commands().status(exp="baseline", local=True, store=store)
    Commands().logs(exp="baseline", seed=0, local=True, store=store)
    Commands().cancel(local=True, store=store)
    assert calls == [
        ("InProcess", "status", Selection("baseline")),
        ("InProcess", "logs", Selection("baseline", 0), False),
        ("InProcess", "cancel", Selection()),
    ]
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["RUN", "PHASE"] and lines[1].split()[:2] == [run_id, "finished"]
    logged = [json.loads(line) for line in lines if line.startswith("{")]
    assert [record["step"] for record in logged] == sorted(record["step"] for record in logged) and logged
    assert lines[-1] == f"0 run(s) stopped in {store}"


@pytest.mark.parametrize("command", ["status", "cancel", "logs"])
def test_a_local_store_that_does_not_exist_is_one_line_and_is_not_created(tmp_path, monkeypatch, capsys, command):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "experiments.toml").write_text((ROOT / "experiments.toml").read_text())
    assert main([command, "--local", "--store", "nowhere", "--exp", "baseline"]) == 2
    assert capsys.readouterr().err.strip() == f"error: store {tmp_path / 'nowhere'}: no such directory"
    assert not (tmp_path / "nowhere").exists()


def test_local_follow_follows_one_run(tmp_path):
    """As with the cluster's Jobs, --follow with several matching runs asks for --seed instead of picking one."""
    store = tmp_path / "runs"
    store.mkdir()
    record_sweep(open_store(str(store)), ["baseline-tiny-s0", "baseline-tiny-s1"])
    local = executor_class("local")(str(store))
    with pytest.raises(UserError, match=r"--follow follows one run: add --seed \(2 runs match"):
        local.logs(Selection("baseline"), follow=True)
