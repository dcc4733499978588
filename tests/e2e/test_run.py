"""End-to-end runs of `python -m runner local`: a complete run directory, determinism, refusals, divergence."""

import json

import numpy as np
import pytest
import torch

from tests.support.runs import edited_config, load_checkpoint_state, local_args, result_metrics, run_cli, run_id_of

RUN_ID = run_id_of(iterations=3)  # the run `local_args(..., iterations=3)` makes


@pytest.fixture(scope="module")
def three_iterations(tmp_path_factory):
    store = tmp_path_factory.mktemp("store")
    result = run_cli(*local_args(str(store), iterations=3))
    assert result.returncode == 0, result.stderr
    return store / RUN_ID, result


@pytest.mark.slow
def test_three_iteration_run_writes_a_complete_run_directory(three_iterations):
    run_dir, process = three_iterations
    for name in ("config.json", "metrics.jsonl", "samples.png", "result.json", "ckpt/LATEST"):
        assert (run_dir / name).is_file(), name
    assert list(run_dir.glob("events.out.tfevents.*"))
    result = json.loads((run_dir / "result.json").read_text())
    assert set(result) >= {
        "experiment",
        "profile",
        "seed",
        "config_hash",
        "iterations",
        "wall_s",
        "device",
        "fid",
        "fid_features",
        "fid_init",
        "auroc",
    }
    assert (result["experiment"], result["profile"], result["seed"], result["iterations"]) == ("baseline", "tiny", 0, 3)
    assert result["fid_features"] == "digits-cnn"
    assert result["fid"] > 0 and result["fid_init"] > 0
    assert set(result["auroc"]) == {"uniform_noise", "inverted", "interpolation"}
    for scores in result["auroc"].values():
        assert 0 <= scores["marginal"] <= 1 and 0 <= scores["joint"] <= 1
    config = json.loads((run_dir / "config.json").read_text())
    assert config["config_hash"] == result["config_hash"]
    latest = json.loads((run_dir / "ckpt/LATEST").read_text())
    assert latest["step"] == 3 and (run_dir / latest["key"].split("/", 1)[1]).is_file()
    state = load_checkpoint_state((run_dir / latest["key"].split("/", 1)[1]).read_bytes())
    assert state["step"] == 3
    assert {"ebm", "ema_ebm", "crl", "ema_crl", "ebm_optimizer", "crl_optimizer", "buffer", "rng"} <= set(state)
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == [3]
    assert f"{RUN_ID}: fid" in process.stdout


@pytest.mark.slow
def test_same_seed_gives_identical_result_metrics(three_iterations, tmp_path):
    run_dir, _ = three_iterations
    again = run_cli(*local_args(str(tmp_path), iterations=3))
    assert again.returncode == 0, again.stderr
    first = result_metrics((run_dir / "result.json").read_text())
    second = result_metrics((tmp_path / RUN_ID / "result.json").read_text())
    assert first == second


@pytest.mark.slow
def test_rerun_of_a_finished_run_shows_it_and_reeval_resumes_without_training(three_iterations):
    run_dir, _ = three_iterations
    before = (run_dir / "ckpt/LATEST").read_text()
    result_before = (run_dir / "result.json").read_text()
    again = run_cli(*local_args(str(run_dir.parent), iterations=3))
    assert again.returncode == 0, again.stderr
    assert f"{RUN_ID}: already finished" in again.stderr
    assert "evaluating" not in again.stdout + again.stderr
    assert (run_dir / "result.json").read_text() == result_before
    reeval = run_cli(*local_args(str(run_dir.parent), iterations=3), "--reeval")
    assert reeval.returncode == 0, reeval.stderr
    assert f"resumed {RUN_ID} at step 3" in reeval.stdout + reeval.stderr
    assert (run_dir / "ckpt/LATEST").read_text() == before


@pytest.mark.slow
def test_changed_config_under_the_same_run_id_is_refused(three_iterations, tmp_path):
    run_dir, _ = three_iterations
    before = sorted(p.name for p in run_dir.rglob("*"))
    # another --set is another point (another run id): the same run id with another config is an edited file
    config = edited_config(tmp_path, "sgld.noise = 0.001", "sgld.noise = 0.002")
    assert run_id_of(iterations=3, config=config) == RUN_ID
    changed = run_cli(*local_args(str(run_dir.parent), iterations=3), "--config", str(config))
    assert changed.returncode == 2
    lines = changed.stderr.strip().splitlines()
    assert len(lines) == 1 and "changed: sgld.noise" in lines[0], changed.stderr
    assert sorted(p.name for p in run_dir.rglob("*")) == before


@pytest.mark.slow
def test_bad_ood_file_stops_before_training(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((4, 16, 16, 3), dtype=np.float32))
    result = run_cli(*local_args(str(tmp_path / "store"), iterations=3), "--ood", str(bad))
    assert result.returncode == 2
    assert result.stderr.strip().startswith(f"error: --ood {bad}: 'x' must be uint8")
    assert not (tmp_path / "store" / RUN_ID).exists()


@pytest.mark.slow
def test_extra_ood_file_gets_its_own_auroc(tmp_path):
    extra = tmp_path / "blank.npz"
    np.savez(extra, x=np.full((50, 8, 8, 1), 255, dtype=np.uint8))
    result = run_cli(*local_args(str(tmp_path / "store"), iterations=2), "--ood", str(extra))
    assert result.returncode == 0, result.stderr
    auroc = json.loads((tmp_path / "store" / run_id_of(iterations=2) / "result.json").read_text())["auroc"]
    assert set(auroc) == {"uniform_noise", "inverted", "interpolation", "blank"}


@pytest.mark.slow
def test_cli_diverged_exit_code_3_keeps_the_last_good_checkpoint(tmp_path):
    # Plain SGD at the largest learning rate, no warm-up and no energy regulariser: the energies overflow in steps.
    unstable = 'train.ebm_optimizer.name="sgd" train.ebm_optimizer.lr=10.0 train.ebm_optimizer.warmup_iterations=0'
    extra = f"{unstable} energy.alpha=0.0 runtime.checkpoint_every=1"
    result = run_cli(*local_args(str(tmp_path), iterations=40, extra=extra))
    run_dir = tmp_path / run_id_of(iterations=40, extra=extra)
    assert result.returncode == 3, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("diverged: step ") and " is " in line
    failed_step = int(line.split()[2].rstrip(":"))
    latest = json.loads((run_dir / "ckpt" / "LATEST").read_text())
    assert latest["step"] == failed_step - 1
    state = load_checkpoint_state((tmp_path / latest["key"]).read_bytes())
    assert all(torch.isfinite(v).all() for v in state["ebm"].values() if v.is_floating_point())
    assert not (run_dir / "result.json").exists()


@pytest.mark.slow
def test_unreachable_store_is_one_line_and_exit_2_before_training(tmp_path):
    result = run_cli(
        *local_args("s3://clel-runs/sweep", iterations=3),
        env={"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9", "CLEL_S3_MAX_ATTEMPTS": "1"},
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert (
        len(lines) == 1
        and lines[0] == "error: store s3://clel-runs/sweep at http://127.0.0.1:9: cannot reach the endpoint"
    )


@pytest.mark.slow
def test_missing_bucket_is_one_line_and_exit_2(s3_endpoint):
    result = run_cli(*local_args("s3://no-such-bucket/sweep", iterations=3))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "bucket 'no-such-bucket' does not exist" in lines[0], result.stderr
