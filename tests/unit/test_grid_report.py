"""summarize on a grid (runner.report.grid), from made-up results: each point compared with the baseline at the
same point, the interaction estimated by least squares and checked against numpy's own solution, the files."""

import json
import math

import numpy as np
import pytest

from runner.config import ExperimentsFile
from runner.layout import point_tag, run_id
from runner.report.grid import fid_axis, find_grids, trend, trends
from runner.report.stats import FID, MetricKey, group_runs, metric_keys
from runner.report.summary import summarize
from runner.report.verdicts import compare_groups, parse_effect
from runner.result import RunResult
from runner.store import open_store
from tests.support import ROOT
from tests.support.results import result

ROOT_CONFIG = ExperimentsFile(ROOT / "experiments.toml")
BETAS = (0.01, 0.1, 1.0)  # 0.01 is the experiments' own value: those runs have no point
INTERPOLATION = MetricKey("interpolation", "marginal")


def grid_result(experiment: str, beta: float, seed: int, fid: float, interpolation: float) -> RunResult:
    raw = result(experiment, seed, fid, (interpolation, 0.6), (1.0, 1.0))
    point = {} if beta == 0.01 else {"energy.beta": beta}
    raw |= {"point": point, "run_id": run_id(experiment, "tiny", seed, point_tag(point))}
    return RunResult(**raw)


def made_up() -> list[RunResult]:
    """baseline flat in beta; no_norm_split worse by 100 FID per decade of beta above 0.01, with seed noise."""
    noise = np.random.default_rng(7).normal(0, 3, size=(2, 3, 3))
    results = []
    for arm, (experiment, slope) in enumerate((("baseline", 0.0), ("no_norm_split", 100.0))):
        for b, beta in enumerate(BETAS):
            for seed in range(3):
                fid = 70 + slope * (np.log10(beta) + 2) + noise[arm, b, seed]
                interpolation = 0.75 - 0.05 * arm * (np.log10(beta) + 2) + noise[arm, b, seed] / 100
                results.append(grid_result(experiment, beta, seed, float(fid), float(interpolation)))
    return results


def test_each_point_is_compared_with_the_baseline_at_the_same_point():
    groups = group_runs(made_up())
    assert sorted(g.profile for g in groups if g.experiment == "baseline") == [
        "tiny",
        "tiny @ energy.beta=0.1",
        "tiny @ energy.beta=1.0",
    ]
    comparisons = compare_groups(groups, [FID], parse_effect(""))
    by_point = {c.profile: math.exp(c.shift.shift) for c in comparisons}  # the FID ratio to that point's baseline
    assert set(by_point) == {"tiny", "tiny @ energy.beta=0.1", "tiny @ energy.beta=1.0"}
    assert by_point["tiny @ energy.beta=1.0"] == pytest.approx(270 / 70, rel=0.1)
    assert by_point["tiny"] == pytest.approx(1, rel=0.1)


def test_the_interaction_is_the_least_squares_solution_numpy_gives_with_hc3_errors():
    results = made_up()
    (grid,) = find_grids(results, ROOT_CONFIG)
    assert grid.axis == "energy.beta" and grid.values == list(BETAS)
    found = trend(grid, "no_norm_split", FID)
    rows = [
        (arm, np.log10(x), FID.value(r))
        for arm, name in ((1, "no_norm_split"), (0, "baseline"))
        for x, r in grid.runs[name]
    ]
    design = np.array([[1.0, a, x, a * x] for a, x, _ in rows])
    y = np.array([v for *_, v in rows])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    # HC3 (MacKinnon and White 1985): (X'X)^-1 X' diag(e_i^2 / (1 - h_i)^2) X (X'X)^-1, h the hat matrix's diagonal
    bread = np.linalg.inv(design.T @ design)
    leverage = np.einsum("ij,jk,ik->i", design, bread, design)
    errors = y - design @ coef
    meat = design.T @ (design * (errors**2 / (1 - leverage) ** 2)[:, None])
    se = np.sqrt((bread @ meat @ bread)[3, 3])
    from scipy import stats

    half = stats.t.ppf(0.975, len(y) - 4) * se
    assert found.scale == "log10"
    assert found.slope == pytest.approx(coef[3], rel=1e-9)
    assert found.ci95 == pytest.approx((coef[3] - half, coef[3] + half), rel=1e-9)
    assert found.p == pytest.approx(2 * stats.t.sf(abs(coef[3] / se), len(y) - 4), rel=1e-6)
    assert found.slope == pytest.approx(100, abs=10)  # the made-up trend
    # balanced cells: the interaction is the slope of the per-value differences against log10(beta)
    assert found.slope == pytest.approx(np.polyfit(np.log10(BETAS), found.differences, 1)[0], rel=1e-9)


def test_trends_are_holm_adjusted_over_the_profiles_arm_by_metric_family():
    results = made_up()
    found = trends(find_grids(results, ROOT_CONFIG), metric_keys(results))
    # the joint AUROC (0.6 everywhere) and the uniform-noise AUROC (1.0 everywhere) are saturated: no trend
    assert {t.key.column for t in found} == {"fid", "auroc_interpolation_marginal"}
    ordered = sorted(found, key=lambda t: t.p)
    m = len(found)
    expected = np.minimum(1, np.maximum.accumulate([(m - i) * t.p for i, t in enumerate(ordered)]))
    assert [t.p_holm for t in ordered] == pytest.approx(list(expected))
    interpolation = next(t for t in found if t.key == INTERPOLATION)
    assert interpolation.slope == pytest.approx(-0.05, abs=0.02)


def test_no_grid_without_two_values_of_one_axis():
    flat = [r for r in made_up() if not r.point]
    assert find_grids(flat, ROOT_CONFIG) == []


def test_summarize_writes_the_grid_table_plot_and_report_section(tmp_path):
    store = open_store(str(tmp_path))
    for r in made_up():
        store.write(f"{r.run_id}/result.json", r.to_json())
    lines: list[str] = []
    summary = summarize(str(tmp_path), log=lines.append, warn=lines.append)
    assert {"grid", "grid_plot"} <= set(summary.files)
    rows = (tmp_path / "summary_grid.csv").read_text().splitlines()
    assert rows[0].startswith("experiment,profile,axis,metric,x,values,differences,interaction")
    fid_row = next(row for row in rows if ",fid," in row)
    assert fid_row.startswith("no_norm_split,tiny,energy.beta,fid,log10,0.01 0.1 1,")
    report = (tmp_path / "report.md").read_text()
    assert "## Along the grid" in report and "summary_grid.png" in report
    assert any(line.startswith("interaction with the grid axis") for line in "\n".join(lines).splitlines())
    assert json.loads(store.read(f"{made_up()[3].run_id}/result.json"))["point"] == {"energy.beta": 0.1}


@pytest.mark.parametrize(("collapsed_fid", "scale"), [(2000.0, "log"), (None, "linear")])
def test_the_grid_plots_fid_on_a_log_scale_when_a_collapse_sits_beside_learned_runs(collapsed_fid, scale):
    """70 beside 2000 would flatten the learned runs on a linear axis; the collapse line is 0.5 x median fid_init."""
    from matplotlib.figure import Figure

    results = made_up()
    if collapsed_fid is not None:
        results[-1] = RunResult(**(results[-1].__dict__ | {"fid": collapsed_fid}))
    inits = [r.fid_init for r in results]
    (grid,) = find_grids(results, ROOT_CONFIG)
    ax = Figure().subplots()
    fid_axis(ax, grid)
    assert ax.get_yscale() == scale
    (line,) = ax.lines
    assert list(line.get_ydata()) == [0.5 * float(np.median(inits))] * 2


def test_a_grids_points_are_listed_in_the_order_of_their_values_not_their_text():
    """'energy.beta=10.0' sorts before '2.0' as text; the table lists the plain runs, then 0.5, 2, 10."""
    results = [grid_result(name, beta, 0, 70.0, 0.7) for name in ("no_norm_split", "baseline") for beta in (10.0, 0.5)]
    results += [grid_result("baseline", beta, 0, 70.0, 0.7) for beta in (2.0, 0.01)]
    smoke = grid_result("baseline", 0.01, 1, 70.0, 0.7).__dict__ | {"smoke": True, "run_id": "baseline-tiny-smoke-s1"}
    results += [RunResult(**smoke)]
    labels = [(g.profile, g.experiment) for g in group_runs(results)]
    assert labels == [
        ("tiny", "baseline"),
        ("tiny @ energy.beta=0.5", "baseline"),
        ("tiny @ energy.beta=0.5", "no_norm_split"),
        ("tiny @ energy.beta=2.0", "baseline"),
        ("tiny @ energy.beta=10.0", "baseline"),
        ("tiny @ energy.beta=10.0", "no_norm_split"),
        ("tiny-smoke", "baseline"),
    ]
