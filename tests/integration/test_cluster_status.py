"""`status`: phases (Kueue queued or admitted), and each run's live progress and results read from the store."""

import json
import re

import pytest

from runner.__main__ import main
from runner.cli.commands import Commands
from runner.cluster import status
from runner.result import AurocScores, RunResult
from runner.run import status as progress
from runner.store import RunStore, open_store
from tests.support.kube import CLUSTER, SELECTOR, rendered, seed_world, write_config

T0 = 1_700_000_000.0


def metrics(steps: range, rate: float, loss: float, t0: float = T0) -> bytes:
    """metrics.jsonl lines as run_logs writes them: one every step of `steps`, `rate` iterations per second."""
    return b"".join(
        json.dumps({"step": s, "time": t0 + s / rate, "loss": loss + s / 1e6, "loss_ebm": 0.1}).encode() + b"\n"
        for s in steps
    )


def result(seed: int, config_hash: str) -> RunResult:
    return RunResult(
        experiment="baseline",
        profile="paper",
        seed=seed,
        run_id=f"baseline-paper-s{seed}",
        config_hash=config_hash,
        iterations=1000,
        wall_s=400.0,
        device="cuda",
        torch="2.9.0",
        crl="simclr",
        norm_direction_split=True,
        use_generated_negatives=True,
        fid=12.345,
        fid_features="inception",
        fid_init=300.0,
        fid_protocol="test",
        collapsed=False,
        auroc={"svhn": AurocScores(marginal=0.9, joint=0.95), "noise": AurocScores(marginal=0.5, joint=None)},
        notes=[],
    )


def put_run(store, job: dict, iterations: int, lines: bytes, finished: bool = False) -> None:
    run_id, config_hash = (
        job["metadata"]["annotations"]["clel/run-id"],
        job["metadata"]["annotations"]["clel/config-hash"],
    )
    store.write(
        f"{run_id}/config.json",
        json.dumps({"config_hash": config_hash, "config": {"train": {"iterations": iterations}}}).encode(),
    )
    store.write(f"{run_id}/metrics.jsonl", lines)
    if finished:
        store.write(f"{run_id}/result.json", result(int(run_id[-1]), config_hash).to_json())


def test_status_shows_step_eta_and_loss_of_a_running_run_and_the_metrics_of_a_finished_one(
    tmp_path, kube, s3_bucket, capsys
):
    path = write_config(tmp_path, CLUSTER | {"store": f"s3://{s3_bucket}/sweep", "seeds": [0, 1, 2]})
    jobs = seed_world(kube, path)
    store = open_store(f"s3://{s3_bucket}/sweep")
    RunStore(store, "baseline-paper-s0").save_checkpoint(400, b"state")
    garbage = b'not json\n{"step": true, "time": 1}\n[1, 2]\n{"step": 450, "time": "soon"}\n'
    put_run(
        store,
        jobs[0],
        1000,
        metrics(range(100, 500, 100), 2.5, 0.25) + garbage + metrics(range(500, 501), 2.5, 0.25) + b'{"step": 6',
    )
    put_run(store, jobs[1], 1000, metrics(range(100, 1001, 100), 4.0, -1.5), finished=True)
    Commands().status(config=str(path))
    captured = capsys.readouterr()
    out = captured.out.splitlines()
    assert out[0].split() == [
        *("EXPERIMENT", "SEED", "PHASE", "RESTARTS", "STEP", "CKPT", "IT/S", "ETA", "LOSS", "RESULT", "AGE", "JOB")
    ]
    # s0: 500 of 1000 at 2.5 it/s -> 200 s left; the garbage lines and the cut-off last line are skipped
    assert re.match(
        r"baseline\s+0\s+Running\s+1\s+500/1000\s+400\s+2\.50\s+3m\s+0\.2505\s+-\s+3h0m\s+clel-baseline-paper-s0-",
        out[1],
    )
    assert re.match(
        r"baseline\s+1\s+Succeeded\s+0\s+1000/1000\s+-\s+4\.00\s+-\s+-1\.499\s+fid 12\.35\s+3h0m\s+clel-", out[2]
    )
    assert re.match(r"baseline\s+2\s+Pending \(ImagePullBackOff\)\s+0\s+-\s+-\s+-\s+-\s+-\s+-\s+3h0m\s+clel-", out[3])
    assert out[4:] == [
        "baseline-paper-s1: auroc vs noise marginal 0.5000",  # result.json keeps its keys sorted
        "baseline-paper-s1: auroc vs svhn marginal 0.9000, joint 0.9500",
    ]
    assert captured.err == ""
    assert {r.query["labelSelector"] for r in kube.sent("GET", "jobs") + kube.sent("GET", "pods")} == {SELECTOR}


def test_status_of_one_experiment_and_an_unreachable_store(tmp_path, kube, s3_endpoint, capsys):
    path = write_config(tmp_path, CLUSTER | {"store": "s3://no-such-bucket/x"})
    seed_world(kube, path)
    Commands().status(exp="baseline", config=str(path))
    captured = capsys.readouterr()
    assert captured.err.startswith("note: progress unknown: store s3://no-such-bucket/x")
    assert "bucket 'no-such-bucket' does not exist" in captured.err and len(captured.err.splitlines()) == 1
    assert re.search(r"^baseline\s+0\s+Running\s+1\s+-\s+-\s", captured.out, re.M)
    assert kube.sent("GET", "jobs")[0].query["labelSelector"] == f"{SELECTOR},clel/experiment=baseline"
    Commands().status(exp="plain_ebm", config=str(path))
    assert "no Jobs match" in capsys.readouterr().out


def test_a_broken_result_file_is_a_note_and_the_run_still_shows(tmp_path, kube, s3_bucket, capsys):
    path = write_config(tmp_path, CLUSTER | {"store": f"s3://{s3_bucket}/sweep", "seeds": [0, 1, 2]})
    jobs = seed_world(kube, path)
    store = open_store(f"s3://{s3_bucket}/sweep")
    put_run(store, jobs[1], 1000, metrics(range(100, 1001, 100), 4.0, 0.5))
    store.write("baseline-paper-s1/result.json", b'{"fid": "low"}')
    Commands().status(exp="baseline", config=str(path))
    captured = capsys.readouterr()
    assert re.search(r"^baseline\s+1\s+Succeeded\s+0\s+1000/1000\s+-\s+4\.00\s+0s\s+0\.501\s+-\s", captured.out, re.M)
    assert captured.err.startswith("note: baseline-paper-s1/result.json unreadable: ")


def test_the_tail_of_a_long_metrics_file_is_read_and_its_cut_first_line_dropped(tmp_path):
    store = open_store(str(tmp_path / "store"))
    lines = metrics(range(1, 5001), 10.0, 1.0)
    assert len(lines) > 10 * progress.TAIL_BYTES
    store.write("r/metrics.jsonl", lines)
    tail = store.read_tail("r/metrics.jsonl", progress.TAIL_BYTES)
    records = progress.metric_records(tail, whole=False)
    assert records[-1][0] == 5000 and records[0][0] > 4700
    assert [step for step, _, _ in records] == list(range(records[0][0], 5001))  # no half line kept
    assert progress.rate_of(records) == pytest.approx(10.0)


def test_the_rate_ignores_one_long_pause():
    records = [(s, T0 + s / 5.0, None) for s in range(0, 600, 100)]
    records += [(s, T0 + 3600 + s / 5.0, None) for s in range(600, 1100, 100)]  # a preemption: an hour away
    assert progress.rate_of(records) == pytest.approx(5.0)
    assert progress.rate_of(records[:1]) is None


def test_eta_is_left_iterations_over_the_rate_until_the_run_has_a_result():
    running = progress.Progress(step=400, iterations=1000, rate=3.0)
    assert running.eta_s == pytest.approx(200.0)
    assert status.duration(running.eta_s) == "3m"
    assert progress.Progress(step=400, iterations=1000, rate=None).eta_s is None
    assert progress.Progress(step=1000, iterations=1000, rate=3.0, result=result(0, "ab" * 6)).eta_s is None


# --- Kueue -------------------------------------------------------------------------------------------------


def test_kueue_jobs_show_queued_until_admitted(tmp_path, kube, capsys):
    path = write_config(
        tmp_path, CLUSTER | {"queue_name": "clel-gpu", "store": "s3://no-such-bucket/x", "seeds": [0, 1, 2]}
    )
    queued, admitted, running = (kube.add_job(job) for job in rendered(path, "mae")[2])
    assert queued["spec"]["suspend"] is True
    admitted["spec"]["suspend"] = running["spec"]["suspend"] = False  # what Kueue does when it admits a Job
    kube.add_pod(running, "mae-2", "Running")
    Commands().status(exp="mae", config=str(path))
    rows = capsys.readouterr().out.splitlines()[1:4]
    phases = [re.split(r"\s{2,}", row)[:3] for row in rows]
    assert phases == [["mae", "0", "Queued (clel-gpu)"], ["mae", "1", "Admitted"], ["mae", "2", "Running"]]


# --- --watch ------------------------------------------------------------------------------------------------


def test_watch_refreshes_every_interval_and_ctrl_c_exits_0(tmp_path, kube, monkeypatch, capsys):
    path = write_config(tmp_path, CLUSTER | {"store": "s3://no-such-bucket/x"})
    seed_world(kube, path)
    pauses = []

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(status, "pause", pause)
    assert main(["status", "--watch", "--interval", "2.5", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert pauses == [2.5, 2.5, 2.5]
    assert out.count("status at ") == 3 and out.count("EXPERIMENT") == 3
    assert len(kube.sent("GET", "jobs")) == 3


@pytest.mark.parametrize("interval", ["0", "-1", "soon"])
def test_a_bad_interval_is_one_line_and_sends_nothing(tmp_path, kube, capsys, interval):
    path = write_config(tmp_path, CLUSTER)
    assert main(["status", "--watch", "--interval", interval, "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: status: --interval") and len(err.splitlines()) == 1
    assert kube.requests == []
