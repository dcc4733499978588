"""summarize (runner.report) through `python -m runner`: its one-line refusal of an empty store, and the summary of
a real run made by the CLI."""

import json
import os
import re
import subprocess
import sys

import pytest

from runner.report.numbers import number
from runner.report.scan import read_result
from runner.report.stats import profile_label
from tests.support import ROOT
from tests.support.results import read_csv, run_summarize
from tests.support.runs import local_args, run_cli, run_id_of


@pytest.mark.slow  # starts python -m runner
def test_cli_exits_2_on_an_empty_store(tmp_path):
    """`python -m runner summarize` through runner.__main__.main: one line on stderr, exit code 2."""
    (tmp_path / "empty").mkdir()
    args = ["summarize", "--store", str(tmp_path / "empty"), "--out", str(tmp_path / "summary.csv")]
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "runner", *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"error: store {tmp_path / 'empty'}: no finished or running runs to summarize"
    ]


@pytest.mark.slow
def test_summarize_a_real_run(tmp_path):
    """A 3-iteration run through the CLI, then summarize: its result.json parses and the run is in both CSVs."""
    store = tmp_path / "store"
    done = run_cli(*local_args(str(store), iterations=3))
    assert done.returncode == 0, done.stderr
    run_id = run_id_of(iterations=3)  # its overrides are a point: baseline-tiny-g<tag>-s0
    data = (store / run_id / "result.json").read_bytes()
    assert read_result(data, run_id).to_json() == data, "the model re-writes run.py's file unchanged"
    fid = json.loads(data)["fid"]
    assert isinstance(fid, float)

    report, stdout, warnings = run_summarize(str(store), tmp_path, config=str(ROOT / "experiments.toml"))
    assert warnings == [] and [r.run_id for r in report.scan.results] == [run_id]
    _, rows = read_csv(tmp_path / "out" / "summary.csv")
    label = profile_label(read_result(data, run_id))  # the run's point keeps it apart: "tiny @ sgld.steps=5, ..."
    assert label.startswith("tiny @ ") and "train.iterations=3" in label
    assert [(row["experiment"], row["profile"], row["seeds"], row["fid_n"]) for row in rows] == [
        ("baseline", label, "0", "1")
    ]
    assert float(rows[0]["fid_mean"]) == pytest.approx(fid, rel=1e-7)
    _, runs = read_csv(tmp_path / "out" / "summary_runs.csv")
    assert [row["run_id"] for row in runs] == [run_id]
    assert runs[0]["fid"] == f"{fid:.8g}" and runs[0]["iterations"] == "3"
    cells = re.split(r"\s{2,}", stdout.splitlines()[1])  # the table's columns are two or more spaces apart
    assert cells[:3] == ["baseline", label, "1"] and cells[3].split()[0] == number(fid, 4)  # the median, 4 digits
