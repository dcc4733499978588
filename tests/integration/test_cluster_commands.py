"""submit, status, logs and cancel against a fake API server below the official client; connecting."""

import re
from datetime import UTC, datetime

import pytest
from kubernetes import client

from runner.__main__ import main
from runner.cli.commands import Commands
from runner.cluster import api
from runner.cluster.render import to_dict
from runner.cluster.status import age
from runner.errors import UserError
from runner.text import text_table
from tests.support.kube import CLUSTER, SELECTOR, rendered, seed_world, write_config

THREE_SEEDS = CLUSTER | {"seeds": [0, 1, 2]}  # the counts below are for three seeds ([sweep] has ten)

# --- submit ------------------------------------------------------------------------------------------


def test_submit_creates_what_is_missing_and_twice_creates_nothing(tmp_path, kube, capsys):
    path = write_config(tmp_path, THREE_SEEDS)
    jobs = rendered(path)[2]
    Commands().submit(config=str(path))
    posts = kube.sent("POST", "jobs")
    assert [post.body for post in posts] == [to_dict(job) for job in jobs]
    assert all(post.path == "/apis/batch/v1/namespaces/clel/jobs" for post in posts)
    assert kube.sent("GET", "jobs")[0].query["labelSelector"] == "app.kubernetes.io/managed-by=clel-runner"
    assert f"{len(jobs)} created" in capsys.readouterr().out
    Commands().submit(config=str(path))
    assert len(kube.sent("POST", "jobs")) == len(jobs)
    out = capsys.readouterr().out
    assert f"{len(jobs)} exists" in out and "created" not in out
    assert re.search(r"^exists\s+clel-baseline-paper-s0-[0-9a-f]{12}\s+baseline-paper-s0$", out, re.M)


def test_submit_one_experiment(tmp_path, kube, capsys):
    Commands().submit(exp="moco", config=str(write_config(tmp_path, THREE_SEEDS)))
    assert [p.body["metadata"]["labels"]["clel/experiment"] for p in kube.sent("POST", "jobs")] == ["moco"] * 3


def test_submit_reports_a_conflict_and_replaces_only_when_asked(tmp_path, kube, capsys):
    path = write_config(tmp_path, THREE_SEEDS)
    (tmp_path / "old").mkdir()
    old_path = write_config(tmp_path / "old", THREE_SEEDS)
    old_path.write_text(old_path.read_text().replace("train.iterations = 100000", "train.iterations = 90000"))
    old = rendered(old_path, "byol")[2][0]  # byol seed 0, rendered for another config
    kube.add_job(old)
    new = rendered(path, "byol")[2][0]
    assert old.metadata.name != new.metadata.name

    with pytest.raises(UserError, match=r"1 run\(s\) already have a Job with another config"):
        Commands().submit(exp="byol", config=str(path))
    out = capsys.readouterr().out
    assert re.search(
        rf"^conflict\s+{new.metadata.name}\s+byol-paper-s0\s+\(Job {old.metadata.name} has config", out, re.M
    )
    assert [p.body["metadata"]["name"] for p in kube.sent("POST", "jobs")] == [
        j.metadata.name for j in rendered(path, "byol")[2][1:]
    ]
    assert kube.sent("DELETE") == []

    Commands().submit(exp="byol", replace=True, config=str(path))
    (delete,) = kube.sent("DELETE")
    assert delete.path.endswith(f"/jobs/{old.metadata.name}") and delete.query["propagationPolicy"] == "Background"
    assert new.metadata.name in kube.jobs and old.metadata.name not in kube.jobs
    assert re.search(rf"^replaced\s+{new.metadata.name}.*was {old.metadata.name}", capsys.readouterr().out, re.M)


def test_same_name_with_another_hash_annotation_is_a_conflict(tmp_path, kube, capsys):
    path = write_config(tmp_path, THREE_SEEDS)
    job = rendered(path, "mae")[2][0]
    stale = kube.add_job(job)
    stale["metadata"]["annotations"]["clel/config-hash"] = "0123456789ab"
    with pytest.raises(UserError):
        Commands().submit(exp="mae", config=str(path))
    assert "conflict" in capsys.readouterr().out
    assert kube.jobs[job.metadata.name]["metadata"]["annotations"]["clel/config-hash"] == "0123456789ab"
    Commands().submit(exp="mae", replace=True, dry_run=True, config=str(path))
    assert re.search(rf"^would replace\s+{job.metadata.name}", capsys.readouterr().out, re.M)
    assert [d.query.get("dryRun") for d in kube.sent("DELETE")] == ["All"]
    assert all(post.body["metadata"]["name"] != job.metadata.name for post in kube.sent("POST", "jobs"))
    assert kube.jobs[job.metadata.name]["metadata"]["annotations"]["clel/config-hash"] == "0123456789ab"
    Commands().submit(exp="mae", replace=True, config=str(path))
    delete, read_back = kube.sent("DELETE")[-1], kube.sent("GET", job.metadata.name)
    assert delete.query["propagationPolicy"] == "Background" and "dryRun" not in delete.query
    assert read_back  # waited until the name was free before creating it again
    assert (
        kube.jobs[job.metadata.name]["metadata"]["annotations"]["clel/config-hash"]
        == job.metadata.labels["clel/config-hash"]
    )


def test_dry_run_asks_the_server_and_persists_nothing(tmp_path, kube, capsys):
    Commands().submit(exp="baseline", dry_run=True, config=str(write_config(tmp_path, THREE_SEEDS)))
    posts = kube.sent("POST", "jobs")
    assert len(posts) == 3 and all(post.query["dryRun"] == "All" for post in posts)
    assert kube.jobs == {}
    assert "would create" in capsys.readouterr().out


def test_a_job_created_meanwhile_counts_as_existing(tmp_path, kube, monkeypatch, capsys):
    path = write_config(tmp_path, THREE_SEEDS)
    jobs = rendered(path, "baseline")[2]
    original = api.KubeApi.list_jobs
    monkeypatch.setattr(api.KubeApi, "list_jobs", lambda self, sel: [original(self, sel), kube.add_job(jobs[0])][0])
    Commands().submit(exp="baseline", config=str(path))
    assert "2 created, 1 exists" in capsys.readouterr().out


def test_missing_namespace_is_one_line(tmp_path, kube):
    with pytest.raises(UserError, match=r"^namespace elsewhere does not exist at https://kube.test:6443: kubectl"):
        Commands().submit(config=str(write_config(tmp_path, THREE_SEEDS | {"namespace": "elsewhere"})))


def test_bad_cluster_section_sends_nothing(tmp_path, kube):
    with pytest.raises(UserError, match="gpus = 0"):
        Commands().submit(config=str(write_config(tmp_path, THREE_SEEDS | {"gpus": 0})))
    assert kube.requests == []


# --- status, logs, cancel --------------------------------------------------------------------------


def test_logs_select_by_label_and_show_the_newest_pod(tmp_path, kube, capsys):
    path = write_config(tmp_path, THREE_SEEDS)
    seed_world(kube, path)
    Commands().logs(exp="baseline", config=str(path))
    out = capsys.readouterr().out
    assert "resumed baseline-paper-s0 at step 200" in out and "preempted" not in out and "done" in out
    assert out.count("==> clel-baseline-paper-s") == 3
    log_paths = [r.path for r in kube.sent("GET", "log")]
    assert log_paths == [f"/api/v1/namespaces/clel/pods/{pod}/log" for pod in ("b0-new", "b1", "b2")]
    assert {r.query["container"] for r in kube.sent("GET", "log")} == {"worker"}
    Commands().logs(exp="baseline", seed=1, config=str(path))
    assert kube.sent("GET", "pods")[-1].query["labelSelector"] == f"{SELECTOR},clel/experiment=baseline,clel/seed=1"
    assert capsys.readouterr().out == "done\n"


def test_logs_follow_moves_on_to_the_replacement_pod(tmp_path, kube, capsys):
    path = write_config(tmp_path, THREE_SEEDS)
    jobs = seed_world(kube, path)
    job0 = jobs[0]

    def preempt_then_finish(pod: str) -> None:
        if pod == "b0-new":  # while following: the pod is evicted and replaced
            kube.add_pod(job0, "b0-third", "Running", log="resumed baseline-paper-s0 at step 300\nfinished\n")
        else:
            job0["status"] = to_dict(
                client.V1JobStatus(conditions=[client.V1JobCondition(type="Complete", status="True")])
            )

    kube.on_log = preempt_then_finish
    with pytest.raises(UserError, match="--follow follows one Job: add --seed"):
        Commands().logs(exp="baseline", follow=True, config=str(path))
    Commands().logs(exp="baseline", seed=0, follow=True, config=str(path))
    out = capsys.readouterr().out
    assert out.index("at step 200") < out.index("replacement pod b0-third") < out.index("at step 300")
    assert all(r.query["follow"].lower() == "true" for r in kube.sent("GET", "log"))


def test_logs_needs_an_experiment(tmp_path, kube):
    with pytest.raises(UserError, match="--exp NAME is required"):
        Commands().logs(config=str(write_config(tmp_path, THREE_SEEDS)))


def test_cancel_deletes_by_label_with_background_propagation(tmp_path, kube, capsys):
    path = write_config(tmp_path, THREE_SEEDS)
    Commands().submit(exp="baseline", config=str(path))
    Commands().submit(exp="mae", config=str(path))
    Commands().cancel(exp="mae", config=str(path))
    assert kube.sent("GET", "jobs")[-1].query["labelSelector"] == f"{SELECTOR},clel/experiment=mae"
    deletes = kube.sent("DELETE")
    assert len(deletes) == 3 and all(d.query["propagationPolicy"] == "Background" for d in deletes)
    assert sorted(job["metadata"]["labels"]["clel/experiment"] for job in kube.jobs.values()) == ["baseline"] * 3
    Commands().cancel(config=str(path))
    assert kube.sent("GET", "jobs")[-1].query["labelSelector"] == SELECTOR
    assert kube.jobs == {}
    assert capsys.readouterr().out.rstrip().endswith(f"3 Job(s) deleted ({SELECTOR}, namespace clel)")


# --- connecting ---------------------------------------------------------------------------------------


def test_missing_kubeconfig_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "nope"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(UserError, match="^no Kubernetes cluster configured") as err:
        api.connect()
    assert "\n" not in str(err.value)


def test_age_and_table_formatting():
    created = datetime(2026, 1, 1, tzinfo=UTC)
    assert [age(created, created.timestamp() + s) for s in (5, 125, 3 * 3600 + 300, 2 * 86400 + 4 * 3600)] == [
        "5s",
        "2m",
        "3h5m",
        "2d4h",
    ]
    assert text_table(["A", "BB"], [["xyz", "1"]]) == "A    BB\nxyz  1"


# --- typos: nothing is sent --------------------------------------------------------------------------------


@pytest.fixture
def connects(kube, monkeypatch) -> list[int]:
    """Counts the calls of runner.cluster.api.connect (which returns the fake server's client)."""
    calls: list[int] = []
    fake = api.connect
    monkeypatch.setattr(api, "connect", lambda: calls.append(1) or fake())
    return calls


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["submit", "--dryrun"], "error: submit: unknown flag --dryrun (did you mean --dry-run?)"),
        (["submit", "--replace", "--exp=moco", "--imgae", "x:1"], "error: submit: unknown flag --imgae"),
        (["cancel", "--experiment", "mae"], "error: cancel: unknown flag --experiment"),
        (["logs", "--exp", "baseline", "--seeds", "1"], "error: logs: unknown flag --seeds"),
        (["logs", "--exp", "baseline", "--seed", "one"], "error: logs: --seed one"),
        (["logs", "--exp", "baseline", "--folow"], "error: logs: unknown flag --folow"),
        (["submit", "--dry-run", "yes"], "error: submit: unexpected argument 'yes'"),
    ],
)
def test_a_mistyped_flag_sends_zero_requests(tmp_path, kube, connects, capsys, args, expected):
    assert main([*args, "--config", str(write_config(tmp_path, THREE_SEEDS))]) == 2
    err = capsys.readouterr().err
    assert err.startswith(expected) and len(err.splitlines()) == 1, err
    assert kube.requests == [] and connects == []


@pytest.mark.parametrize("command", ["status", "logs", "cancel", "submit"])
@pytest.mark.parametrize("exp", ["basline", "../x"])
def test_an_unknown_experiment_exits_2_before_connecting(tmp_path, kube, connects, capsys, command, exp):
    assert main([command, "--exp", exp, "--config", str(write_config(tmp_path, THREE_SEEDS))]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --exp {exp}: unknown experiment (known: baseline, ") and len(err.splitlines()) == 1
    assert kube.requests == [] and connects == []
