"""summary_runs.csv read back into results (runner.report.runs_csv): every cell it wrote comes back, points are
recovered from the run ids' tags, and a row that is not a run stops with its reason."""

import csv

import pytest

from runner.layout import point_tag, run_id
from runner.report.runs_csv import point_of, read_runs
from runner.report.stats import metric_keys
from runner.report.table import csv_text, run_columns, run_row
from runner.result import RunResult
from tests.support import ROOT
from tests.support.results import METRICS, RUNS, result

ENCODER = {
    "probe_h": 0.9416,
    "probe_z": 0.8917,
    "mean_cos_z": 0.3228,
    "untrained_probe_h": 0.8222,
    "untrained_probe_z": 0.7972,
    "untrained_mean_cos_z": 0.982,
    "pixel_probe": 0.9583,
    "final_loss": 0.717,
    "chance_loss": None,
    "collapsed": False,
}


def made_up() -> list[RunResult]:
    """The report tests' runs, one of them with an encoder block, and two at grid points of energy.beta."""
    runs = [RunResult(**result(*run) | ({"encoder": ENCODER} if i == 0 else {})) for i, run in enumerate(RUNS)]
    for beta, seed in ((0.1, 0), (1, 1)):
        point = {"energy.beta": beta}
        raw = result("baseline", seed, 50.0 + seed, (0.7, 0.6), (1.0, 1.0))
        runs.append(RunResult(**raw | {"point": point, "run_id": run_id("baseline", "tiny", seed, point_tag(point))}))
    return runs


def test_every_cell_summary_runs_csv_wrote_comes_back(tmp_path):
    runs = made_up()
    columns = run_columns(METRICS)
    written = csv_text(columns, [run_row(r, METRICS) for r in runs])
    path = tmp_path / "summary_runs.csv"
    path.write_text(written)
    back = read_runs(path, "energy.beta", [0.01, 0.1, 1.0])
    assert csv_text(columns, [run_row(r, METRICS) for r in back]) == written
    assert [r.point for r in back[-2:]] == [{"energy.beta": 0.1}, {"energy.beta": 1}]
    assert back[0].encoder is not None and back[0].encoder.probe_z == pytest.approx(0.8917)
    assert back[0].encoder.chance_loss is None and back[1].encoder is None
    assert back[4].fid is None and back[4].notes == ["fid missing: no weights"]


def test_the_beta_grids_csv_reads_back_cell_for_cell():
    path = ROOT / "docs" / "grid" / "summary_runs.csv"
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        columns, rows = list(reader.fieldnames or []), list(reader)
    runs = read_runs(path, "energy.beta", [0.001, 0.01, 0.1, 0.3, 1])
    rewritten = list(csv.DictReader(csv_text(columns, [run_row(r, metric_keys(runs)) for r in runs]).splitlines()))
    assert rewritten == rows
    betas = sorted({r.point.get("energy.beta", 0.01) for r in runs})
    assert betas == [0.001, 0.01, 0.1, 0.3, 1] and len(runs) == 30


def test_a_tag_no_axis_value_makes_is_refused():
    tagged = run_id("baseline", "tiny", 0, point_tag({"energy.beta": 0.5}))
    assert point_of("baseline-tiny-s0", "energy.beta", [0.5]) == {}
    assert point_of(tagged, "energy.beta", [0.1, 0.5]) == {"energy.beta": 0.5}
    with pytest.raises(ValueError, match="is none of energy.beta"):
        point_of(tagged, "energy.beta", [0.1, 1])


def test_a_row_that_is_not_a_run_says_why(tmp_path):
    runs = made_up()[:1]
    row = run_row(runs[0], METRICS) | {"run_id": "someone-else-s0"}
    path = tmp_path / "summary_runs.csv"
    path.write_text(csv_text(run_columns(METRICS), [row]))
    with pytest.raises(ValueError, match="someone-else-s0: not a run"):
        read_runs(path)
