"""Verdicts (runner.report.verdicts, docs/STATISTICS.md): the exact rank test and Holm within each question's
family, the verdict's direction per endpoint, FID on the log scale, saturated endpoints, the MDE at Holm's
first-step alpha, and report.md's sections from a store of made-up results."""

import json
import math

import numpy as np
import pytest
from scipy import stats

from runner.errors import UserError
from runner.report.estimates import Shift
from runner.report.power import minimum_detectable_shift, robust_spread
from runner.report.stats import FID, Group, MetricKey
from runner.report.summary import summarize
from runner.report.terminal import format_verdicts
from runner.report.verdicts import (
    BETTER,
    NO_DIFFERENCE,
    SATURATED,
    UNTESTED,
    WORSE,
    Comparison,
    compare_groups,
    holm,
    parse_effect,
)
from runner.result import RunResult
from runner.store import open_store
from tests.support.results import CONFIG, result

INTERPOLATION = MetricKey("interpolation", "marginal")
DEFAULT = parse_effect("")


def comparison(p: float, shift: float = -1.0, key: MetricKey = FID) -> Comparison:
    made = Shift(shift, None, 0.5, None, p, None, None)
    return Comparison("arm", "tiny", key, "replace", True, 3, 3, made, None, NO_DIFFERENCE, None, None, 4)


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
    untested = Comparison("arm", "tiny", FID, "replace", True, 1, 3, None, None, UNTESTED, None, None, 1)
    adjusted = holm([comparison(0.02), untested])
    assert adjusted[0].p_holm == pytest.approx(0.02) and adjusted[1].p_holm is None  # a family of one


def test_the_verdict_follows_each_endpoints_direction():
    """A lower FID is better; a lower AUROC is worse; the same p either way."""
    fid_lower, auroc_lower = holm([comparison(0.001, -0.5, FID), comparison(0.001, -0.1, INTERPOLATION)])
    assert (fid_lower.verdict, auroc_lower.verdict) == (BETTER, WORSE)
    fid_higher, auroc_higher = holm([comparison(0.001, 0.5, FID), comparison(0.001, 0.1, INTERPOLATION)])
    assert (fid_higher.verdict, auroc_higher.verdict) == (WORSE, BETTER)


BASE_FID = [60.0, 70.0, 80.0, 75.0, 66.0, 72.0, 69.0, 64.0, 90.0, 2000.0]  # one collapse in ten
BASE_AUROC = [0.75, 0.74, 0.76, 0.73, 0.75, 0.77, 0.74, 0.72, 0.76, 0.75]


def test_fid_is_compared_on_the_log_scale_with_the_exact_rank_test():
    base = runs("baseline", BASE_FID, BASE_AUROC)
    arm = runs("byol", [40.0, 45.0, 50.0, 42.0, 44.0, 47.0, 39.0, 41.0, 43.0, 46.0], [0.6] * 10)
    noise = MetricKey("uniform_noise", "marginal")
    fid, interpolation, saturated = compare_groups(
        [base, arm], [FID, INTERPOLATION, noise], DEFAULT, {"byol": "replace"}
    )
    a, b = np.log(arm.stat(FID).values), np.log(base.stat(FID).values)
    assert fid.p == pytest.approx(stats.mannwhitneyu(a, b, method="exact").pvalue)
    assert fid.shift.p_welch == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    pairs = [x - y for x in a for y in b]
    assert math.exp(fid.shift.shift) == pytest.approx(math.exp(np.median(pairs)))
    assert fid.shift.p_better == pytest.approx(np.mean([x < y for x in a for y in b]))
    assert (fid.family, fid.primary, interpolation.primary) == ("replace", True, True)
    assert saturated.verdict == SATURATED and saturated.p is None and saturated.primary is False
    # the primary family (fid, interpolation marginal) of one arm has two tests: Holm doubles the smaller p
    assert fid.family_size == interpolation.family_size == 2
    assert fid.p_holm == pytest.approx(min(1.0, 2 * min(fid.p, interpolation.p)))
    assert (fid.verdict, interpolation.verdict) == (BETTER, WORSE)


def test_each_question_is_its_own_family():
    base = runs("baseline", BASE_FID, BASE_AUROC)
    arms = [runs(name, [f * 0.8 for f in BASE_FID], [0.7] * 10) for name in ("byol", "moco", "no_norm_split")]
    questions = {"byol": "replace", "moco": "replace", "no_norm_split": "remove"}
    found = compare_groups([base, *arms], [FID, INTERPOLATION], DEFAULT, questions)
    sizes = {(c.experiment, c.key): (c.family, c.family_size) for c in found}
    assert sizes[("byol", FID)] == sizes[("moco", FID)] == ("replace", 4)  # two arms x two primary endpoints
    assert sizes[("no_norm_split", FID)] == ("remove", 2)
    # the same data in a family of four is adjusted more than in a family of two
    byol = next(c for c in found if c.experiment == "byol" and c.key == FID)
    split = next(c for c in found if c.experiment == "no_norm_split" and c.key == FID)
    assert byol.p == pytest.approx(split.p) and byol.p_holm >= split.p_holm


def test_the_mde_is_the_rank_tests_at_holms_first_step_alpha():
    base = runs("baseline", BASE_FID, BASE_AUROC)
    arm = runs("byol", [f * 1.05 for f in BASE_FID[::-1]], [0.74] * 10)
    fid, _ = compare_groups([base, arm], [FID, INTERPOLATION], DEFAULT, {"byol": "replace"})
    a, b = np.log(arm.stat(FID).values), np.log(base.stat(FID).values)
    assert fid.mde == pytest.approx(minimum_detectable_shift(10, 10, 0.05 / 2, robust_spread(a, b)))
    assert fid.seeds_needed is None or fid.seeds_needed >= 2


def test_a_bad_effect_is_refused_and_a_relative_fid_effect_is_a_log_ratio():
    effect = parse_effect("fid=5%")
    assert (effect.fid, effect.fid_relative, effect.auroc) == (0.05, True, 0.02)
    assert effect.size(FID, 80.0) == pytest.approx(math.log(1.05)) and effect.size(INTERPOLATION, 80.0) == 0.02
    assert parse_effect("fid=8,auroc=0.05").size(FID, 80.0) == pytest.approx(math.log(88 / 80))
    for bad in ("fid=-1", "auroc=2", "fid=x", "loss=3"):
        with pytest.raises(ValueError, match="--effect"):
            parse_effect(bad)


def test_the_report_has_its_sections_from_a_store_of_made_up_results(tmp_path):
    store = open_store(str(tmp_path / "runs"))
    made = [
        ("baseline", [70.0, 71.0, 73.0, 72.0, 74.0], [0.75, 0.74, 0.76, 0.75, 0.77]),
        ("byol", [40.0, 41.0, 42.0, 43.0, 44.0], [0.60, 0.62, 0.58, 0.61, 0.59]),
        ("no_norm_split", [800.0, 900.0, 2000.0, 850.0, 950.0], [0.43, 0.45, 0.44, 0.46, 0.42]),
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
        "## Failed runs",
        "## Collapsed runs",
        "## Weak seeds",
        "## Running and missing runs",
        "## Provenance",
    ]
    assert "| `byol` | BYOL instead of SimCLR | tiny | 0 1 2 3 4 |" in text
    assert "![levels and differences to the baseline](summary.png)" in text
    assert "![every run's samples](samples_grid.png)" not in text  # no samples.png in the made-up runs
    assert "- `no_norm_split-tiny-s2`: FID 2000 against fid_init 2000" in text
    # weak: FID above 1.5 x the arm's median; 2000 / 900 = 2.22, and nothing else is above 1.5 x its median
    assert "- `no_norm_split-tiny-s2`: FID 2000, 2.22 x the median of `no_norm_split` (tiny) (collapsed)" in text
    assert "1 of the 15 runs of those arms are weak." in text
    assert "mae" in text.split("## Running and missing runs")[1] and "seeds 0" in text
    # 15 runs of 1800 + 360 x seed seconds: 3 x (5 x 1800 + 360 x 10) s = 10.50 h
    assert "- device: cpu (1 threads; Xeon, AVX512)" in text and "0.00 GPU hours, 10.50 CPU hours" in text
    assert "`python -m runner local --exp byol --profile tiny --seed 1 --store" in text
    verdict_rows = [line for line in text.splitlines() if line.startswith("| tiny | `")]
    assert len(verdict_rows) == sum(c.verdict != SATURATED for c in summary.comparisons) == 4  # fid, interp. m
    assert "Saturated" in text and "auroc_uniform_noise_marginal (tiny)" in text
    # every byol seed below every baseline seed: exact p 2 / 252, Holm over byol's two primary endpoints: 0.016
    byol_fid = next(line for line in verdict_rows if "`byol` | fid |" in line)
    assert "**better**" in byol_fid and "| 0.008 | 0.016 |" in byol_fid and "x0.58" in byol_fid


def test_a_bad_effect_or_report_name_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="--effect"):
        summarize(str(tmp_path), None, "", effect="fid=0")
    with pytest.raises(UserError, match="--report x.txt"):
        summarize(str(tmp_path), None, "", report="x.txt")


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
    assert auroc.shift.p_welch == pytest.approx(stats.ttest_1samp(a, 1.0).pvalue)  # Welch with one side constant
    assert auroc.p == pytest.approx(2 / 252)  # every arm seed below every baseline seed: the exact test's floor
    assert auroc.verdict == WORSE and auroc.p_holm == pytest.approx(2 * 2 / 252)  # Holm over the two primary


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
