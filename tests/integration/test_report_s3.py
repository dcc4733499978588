"""summarize (runner.report) on an S3 store: the loopback moto server of conftest.py, an unreachable endpoint, a
missing bucket."""

import pytest
from matplotlib.image import imread

from runner.errors import UserError
from runner.layout import TENSORBOARD_DIR
from runner.report.summary import summarize
from runner.store import open_store
from tests.support.results import (
    CONFIG,
    OUTPUT_NAMES,
    RUNS,
    check_hparams,
    check_runs_csv,
    check_summary_csv,
    populate,
    run_summarize,
)


# --- an S3 store on the loopback moto server ---------------------------------------------------------------
def test_summarize_s3_store(s3_bucket, tmp_path):
    uri = f"s3://{s3_bucket}/ablation"
    store = open_store(uri)
    populate(store)
    report, stdout, warnings = run_summarize(uri, tmp_path)

    check_summary_csv(tmp_path / "out" / "summary.csv")
    check_runs_csv(tmp_path / "out" / "summary_runs.csv")
    assert len(warnings) == 3 and any(f"{uri}/moco-tiny-s0/result.json: not valid JSON" in line for line in warnings)
    assert report.scan.running == {"moco-tiny-s1": "step 300"}
    assert imread(tmp_path / "out" / "summary.png").shape[:2] == (
        340 + 60,
        5 * 380,
    )  # one profile: a row of five panels
    assert imread(tmp_path / "out" / "samples_grid.png").shape[:2] == (3 * 290, 3 * 260)

    keys = store.list(f"{TENSORBOARD_DIR}/")
    assert keys == sorted(report.tensorboard_keys) and len(keys) == 1 + len(RUNS)
    local = tmp_path / "tb"
    for key in keys:
        store.download(key, local / key)
    check_hparams(local / TENSORBOARD_DIR, [f"{e}-tiny-s{s}" for e, s, *_ in RUNS])


def test_unreachable_s3_store_is_a_user_error(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")
    monkeypatch.setenv("CLEL_S3_MAX_ATTEMPTS", "1")
    with pytest.raises(UserError, match="s3://nobucket/x .*127.0.0.1:9"):
        run_summarize("s3://nobucket/x", tmp_path)


def test_missing_bucket_is_a_user_error(s3_endpoint, tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        run_summarize("s3://no-such-bucket-here/x", tmp_path)


def test_summarize_uploads_every_file_it_writes_to_an_s3_store(s3_bucket, tmp_path, monkeypatch):
    """No --out on S3: the CSVs and PNGs are uploaded beside the runs (as tensorboard/ is), none left locally."""
    uri = f"s3://{s3_bucket}/ablation"
    store = open_store(uri)
    populate(store)
    (tmp_path / "experiments.toml").write_text(CONFIG)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    lines: list[str] = []
    summarize(uri, None, str(tmp_path / "experiments.toml"), lines.append, lambda line: None)
    root_files = sorted(key for key in store.list("") if "/" not in key)
    assert root_files == sorted([*OUTPUT_NAMES, "sweep.json"])
    store.download("summary.csv", tmp_path / "downloaded" / "summary.csv")
    check_summary_csv(tmp_path / "downloaded" / "summary.csv")
    assert list(cwd.iterdir()) == [] and any(
        line.startswith("uploaded samples_grid.png") or "summary.csv" in line
        for line in lines
        if line.startswith("uploaded")
    )
