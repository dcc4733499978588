"""Verdicts (runner.report.verdicts): Welch p-values against scipy, Holm's adjustment by hand, power and minimum
detectable differences against statsmodels' solver, scipy's noncentral t and a textbook value, the verdict's
direction per metric, saturated metrics, and report.md's sections from a store of made-up results."""

import json
import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.power import TTestIndPower

from runner.errors import UserError
from runner.report.stats import FID, Group, MetricKey
from runner.report.summary import summarize
from runner.report.table import format_verdicts
from runner.report.verdicts import (
    BETTER,
    NO_DIFFERENCE,
    SATURATED,
    UNTESTED,
    WORSE,
    Comparison,
    compare_groups,
    holm,
    minimum_detectable_difference,
    parse_effect,
    pooled_std,
    seeds_for,
)
from runner.result import RunResult
from runner.store import open_store
from tests.support.results import CONFIG, result

INTERPOLATION = MetricKey("interpolation", "marginal")
DEFAULT = parse_effect("")


def comparison(p: float, diff: float = -1.0, key: MetricKey = FID) -> Comparison:
    return Comparison("arm", "tiny", key, 3, 3, diff, None, p, None, NO_DIFFERENCE, None, None)


def runs(experiment: str, fids: list[float], interpolation: list[float]) -> Group:
    made = [
        RunResult(**result(experiment, seed, fid, (auroc, 0.7), (1.0, 1.0)))
        for seed, (fid, auroc) in enumerate(zip(fids, interpolation, strict=True))
    ]
    return Group(experiment, "tiny", made)


def test_holm_adjusts_a_p_value_list_as_done_by_hand():
    """p = 0.01, 0.04, 0.03, 0.005: sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04, then
    the running maximum: 0.02, 0.03, 0.06, 0.06; in the original order 0.03, 0.06, 0.06, 0.02."""
    adjusted = holm([comparison(p) for p in (0.01, 0.04, 0.03, 0.005)])
    assert [c.p_holm for c in adjusted] == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert [c.verdict for c in adjusted] == [BETTER, NO_DIFFERENCE, NO_DIFFERENCE, BETTER]


def test_untested_comparisons_stay_out_of_the_family():
    family = [comparison(0.02), Comparison("arm", "tiny", FID, 1, 3, 1.0, None, None, None, UNTESTED, None, None)]
    adjusted = holm(family)
    assert adjusted[0].p_holm == pytest.approx(0.02) and adjusted[1].p_holm is None  # a family of one


def test_the_verdict_follows_each_metrics_direction():
    """A lower FID is better; a lower AUROC is worse; the same p either way."""
    fid_lower, auroc_lower = holm([comparison(0.001, -5.0, FID), comparison(0.001, -0.1, INTERPOLATION)])
    assert (fid_lower.verdict, auroc_lower.verdict) == (BETTER, WORSE)
    fid_higher, auroc_higher = holm([comparison(0.001, 5.0, FID), comparison(0.001, 0.1, INTERPOLATION)])
    assert (fid_higher.verdict, auroc_higher.verdict) == (WORSE, BETTER)


def test_p_is_welchs_and_a_saturated_metric_gets_no_verdict():
    base = runs("baseline", [60.0, 70.0, 80.0, 75.0], [0.75, 0.74, 0.76, 0.73])
    arm = runs("byol", [40.0, 45.0, 50.0, 42.0], [0.60, 0.62, 0.58, 0.61])
    metrics = [FID, INTERPOLATION, MetricKey("uniform_noise", "marginal")]
    fid, interpolation, noise = compare_groups([base, arm], metrics, DEFAULT)
    welch = stats.ttest_ind(arm.stat(FID).values, base.stat(FID).values, equal_var=False)
    assert fid.p == pytest.approx(welch.pvalue, rel=1e-12)
    assert fid.ci95 == pytest.approx(tuple(welch.confidence_interval(0.95)), rel=1e-9)
    assert noise.verdict == SATURATED and noise.p is None and noise.p_holm is None
    assert fid.p_holm == pytest.approx(
        min(1.0, 2 * min(fid.p, interpolation.p)) if fid.p < interpolation.p else max(2 * interpolation.p, fid.p)
    )
    assert (fid.verdict, interpolation.verdict) == (BETTER, WORSE)


def test_power_of_the_textbook_case_and_the_minimum_detectable_difference():
    """d = 1 with 17 per group at alpha 0.05 two-sided has power about 0.8; with 5 per group the detectable d at
    80% power is about 2.0 (textbook values), as statsmodels solves it and as scipy's noncentral t gives it."""
    power = TTestIndPower().power(effect_size=1.0, nobs1=17, alpha=0.05, ratio=1.0)
    df, t_crit = 32, stats.t.ppf(0.975, 32)
    noncentral = 1.0 * math.sqrt(17 / 2)
    by_scipy = stats.nct.sf(t_crit, df, noncentral) + stats.nct.cdf(-t_crit, df, noncentral)
    assert power == pytest.approx(by_scipy, rel=1e-9) and power == pytest.approx(0.8, abs=0.01)
    assert seeds_for(effect=1.0, spread=1.0) == 17
    mde = minimum_detectable_difference(5, 5, spread=3.0)
    assert mde / 3.0 == pytest.approx(2.0, abs=0.05)
    d = mde / 3.0
    noncentral = d * math.sqrt(5 / 2)
    t_crit = stats.t.ppf(0.975, 8)
    assert stats.nct.sf(t_crit, 8, noncentral) + stats.nct.cdf(-t_crit, 8, noncentral) == pytest.approx(0.8, abs=1e-6)


def test_pooled_spread_and_seeds_needed_for_a_stated_effect():
    a, b = np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 6.0, 8.0])
    assert pooled_std(a, b) == pytest.approx(math.sqrt((2 * 1.0 + 3 * (20 / 3)) / 5))
    effect = parse_effect("fid=5%")
    assert (effect.fid, effect.fid_relative, effect.auroc) == (0.05, True, 0.02)
    assert effect.size(FID, 80.0) == pytest.approx(4.0) and effect.size(INTERPOLATION, 80.0) == 0.02
    assert parse_effect("fid=12,auroc=0.05").size(FID, 80.0) == 12.0
    for bad in ("fid=-1", "auroc=2", "fid=x", "loss=3"):
        with pytest.raises(ValueError, match="--effect"):
            parse_effect(bad)


def test_the_report_has_its_sections_from_a_store_of_made_up_results(tmp_path):
    store = open_store(str(tmp_path / "runs"))
    made = [
        ("baseline", [70.0, 71.0, 73.0], [0.75, 0.74, 0.76]),
        ("byol", [40.0, 41.0, 42.0], [0.60, 0.62, 0.58]),
        ("no_norm_split", [800.0, 900.0, 2000.0], [0.43, 0.45, 0.44]),
    ]
    for experiment, fids, aurocs in made:
        for seed, (fid, auroc) in enumerate(zip(fids, aurocs, strict=True)):
            body = result(experiment, seed, fid, (auroc, 0.7), (1.0, 1.0))
            body |= {"fid_init": 2000.0, "collapsed": fid > 1000, "device": "cpu (1 threads; Xeon, AVX512)"}
            store.write(f"{body['run_id']}/result.json", json.dumps(body).encode())
    store.write("sweep.json", json.dumps({"asked": ["mae-tiny-s0", "baseline-tiny-s0"]}).encode())
    config = tmp_path / "experiments.toml"
    config.write_text(
        CONFIG.replace("[experiments.byol]", '[experiments.byol]\ndescription = "BYOL instead of SimCLR"')
    )
    lines: list[str] = []
    summary = summarize(str(tmp_path / "runs"), None, str(config), lines.append, lambda line: None)
    assert "weak seeds (FID above 1.5 x the arm's median): no_norm_split-tiny-s2 (2.2 x)" in lines
    text = (tmp_path / "runs" / "report.md").read_text()
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == [
        "## The question",
        "## Verdicts",
        "## Figures",
        "## Collapsed runs",
        "## Weak seeds",
        "## Running and missing runs",
        "## Provenance",
    ]
    assert "| `byol` | BYOL instead of SimCLR | tiny | 0 1 2 |" in text
    assert "![levels and differences to the baseline](summary.png)" in text
    assert "![every run's samples](samples_grid.png)" not in text  # no samples.png in the made-up runs
    assert "- `no_norm_split-tiny-s2`: FID 2000 against fid_init 2000" in text
    # weak: FID above 1.5 x the arm's median; 2000 / 900 = 2.22, and nothing else is above 1.5 x its median
    assert "- `no_norm_split-tiny-s2`: FID 2000, 2.22 x the median of `no_norm_split` (tiny) (collapsed)" in text
    assert "1 of the 9 runs of those arms are weak." in text
    assert "mae" in text.split("## Running and missing runs")[1] and "seeds 0" in text
    # nine runs of 1800 + 360 x seed seconds: 3 x (1800 + 2160 + 2520) s = 5.40 h
    assert "- device: cpu (1 threads; Xeon, AVX512)" in text and "0.00 GPU hours, 5.40 CPU hours" in text
    assert "`python -m runner local --exp byol --profile tiny --seed 1 --store" in text
    verdict_rows = [line for line in text.splitlines() if line.startswith("| tiny | `")]
    assert len(verdict_rows) == sum(c.verdict != SATURATED for c in summary.comparisons) == 4  # fid, interp. m
    assert "Saturated" in text and "auroc_uniform_noise_marginal (tiny)" in text
    assert any("byol" in line and "fid" in line and "**better**" in line for line in verdict_rows)


def test_a_bad_effect_or_report_name_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="--effect"):
        summarize(str(tmp_path), None, "", effect="fid=0")
    with pytest.raises(UserError, match="--report x.txt"):
        summarize(str(tmp_path), None, "", report="x.txt")


@pytest.mark.parametrize("d", [6.0, 10.0, 20.0, 20.0286, 1e3, 1e6])
def test_an_effect_larger_than_two_seeds_need_asks_for_two(d):
    """statsmodels' solver finds no root below two seeds and returns nan for a large d (seen with a tiny spread);
    two seeds already have more than 80% power there (scipy's noncentral t, df 2: its upper tail alone, since
    the lower tail is nan at d = 20, as in the beta grid study: an AUROC effect of 0.02 against a spread of 0.001)."""
    t_crit = stats.t.ppf(0.975, 2)
    noncentral = d * math.sqrt(2 / 2)
    assert stats.nct.sf(t_crit, 2, noncentral) >= 0.8
    assert seeds_for(effect=d, spread=1.0) == 2


@pytest.mark.parametrize(("d", "expected"), [(2.0, 6), (3.0, 4), (4.0, 3)])
def test_seeds_needed_is_the_smallest_n_whose_power_reaches_80_percent(d, expected):
    """By scipy's noncentral t: n - 1 seeds fall short of 0.8, n reach it."""
    t_crit = lambda n: stats.t.ppf(0.975, 2 * n - 2)  # noqa: E731
    power = lambda n: stats.nct.sf(t_crit(n), 2 * n - 2, d * math.sqrt(n / 2))  # noqa: E731
    assert power(expected - 1) < 0.8 <= power(expected)
    assert seeds_for(effect=d, spread=1.0) == expected


def test_an_effect_two_seeds_cannot_detect_asks_for_three():
    """d = 5: two seeds have power 0.72 (< 0.8), three have more."""
    assert TTestIndPower().power(effect_size=5.0, nobs1=2, alpha=0.05, ratio=1.0) < 0.8
    assert seeds_for(effect=5.0, spread=1.0) == 3


def test_a_weak_seed_is_above_one_and_a_half_times_its_arms_median_fid():
    # median of 10, 11, 12, 20 is 11.5: 20 > 17.25 is weak (20 / 11.5 = 1.739); 17.25 itself is not above it
    weak = runs("moco", [10.0, 11.0, 12.0, 20.0], [0.7] * 4).weak_seeds()
    assert [(r.seed, ratio) for r, ratio in weak] == [(3, pytest.approx(20 / 11.5))]
    assert runs("moco", [10.0, 11.0, 12.0, 17.25], [0.7] * 4).weak_seeds() == []
    # two seeds have no median to speak of: their mean, with one of them always above
    assert runs("moco", [10.0, 100.0], [0.7] * 2).weak_seeds() == []


def test_a_constant_baseline_gives_a_p_value_without_a_library_warning(recwarn):
    # the baseline at AUROC 1.000 on every seed, the arm spread out below it (no_norm_split's inverted digits):
    # scipy warns of precision loss in the constant side's moments; summarize prints no library warning
    arm = runs("no_norm_split", [60.0, 61.0, 62.0, 63.0, 64.0], [0.0, 0.022, 0.0013, 0.059, 0.034])
    base = runs("baseline", [60.0, 61.0, 62.0, 63.0, 64.0], [1.0] * 5)
    (fid, auroc) = compare_groups([base, arm], [FID, INTERPOLATION], DEFAULT)
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
    a = np.array([0.0, 0.022, 0.0013, 0.059, 0.034])
    assert auroc.p == pytest.approx(stats.ttest_1samp(a, 1.0).pvalue)  # Welch with one side constant
    assert auroc.verdict == WORSE


def test_an_arm_without_a_metric_has_no_row_in_the_verdict_table():
    # plain_ebm has no encoder, so no joint score: its joint comparison is untested with n = 0 and is not printed
    plain = Group(
        "plain_ebm", "tiny", [RunResult(**result("plain_ebm", s, 60.0 + s, (0.7, None), (1.0, None))) for s in range(3)]
    )
    base = runs("baseline", [60.0, 61.0, 63.0], [0.70, 0.71, 0.72])
    joint = MetricKey("interpolation", "joint")
    comparisons = compare_groups([base, plain], [FID, INTERPOLATION, joint], DEFAULT)
    assert [(c.key, c.n, c.verdict) for c in comparisons][2] == (joint, 0, UNTESTED)
    rows = format_verdicts(comparisons).splitlines()[1:3]
    assert [row.split()[2] for row in rows] == ["fid", "auroc_interpolation_marginal"]
    assert "auroc_interpolation_joint" not in format_verdicts(comparisons)


def test_when_the_solver_returns_nan_the_search_gives_the_solvers_answer(monkeypatch):
    """The fallback (an integer search over the same power) agrees with the solver where the solver works."""
    expected = {d: seeds_for(effect=d, spread=1.0) for d in (0.5, 1.0, 2.5)}
    monkeypatch.setattr(TTestIndPower, "solve_power", lambda self, **kwargs: float("nan"))
    assert {d: seeds_for(effect=d, spread=1.0) for d in expected} == expected == {0.5: 64, 1.0: 17, 2.5: 4}
