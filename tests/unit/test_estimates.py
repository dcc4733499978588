"""Estimates for heavy-tailed seeds (runner.report.estimates) against scipy and numpy computed another way, and
against hand-derived values."""

import itertools

import numpy as np
import pytest
from scipy import stats

from runner.report import estimates
from runner.report.estimates import compare, failure_interval, hodges_lehmann, iqm, level, probability_lower

A = np.array([60.0, 70.0, 65.0, 80.0, 75.0, 68.0, 72.0, 66.0, 300.0, 64.0])
B = np.array([63.0, 71.0, 90.0, 88.0, 85.0, 79.0, 1900.0, 82.0, 77.0, 69.0])


def test_iqm_is_the_mean_of_the_middle_half():
    # ten values: 25% cut from each end drops 2 (int(2.5)) at each side, the mean of the middle six
    middle = np.sort(A)[2:8]
    assert iqm(A) == pytest.approx(middle.mean())
    assert iqm(A) == pytest.approx(stats.trim_mean(A, 0.25))
    assert iqm(np.arange(8.0)) == pytest.approx(np.mean([2, 3, 4, 5]))


def test_hodges_lehmann_is_the_median_of_every_pairwise_difference():
    pairs = [a - b for a, b in itertools.product(A, B)]
    assert hodges_lehmann(A, B) == pytest.approx(np.median(pairs))
    assert hodges_lehmann(np.array([1.0, 2.0]), np.array([0.0])) == pytest.approx(1.5)
    # along an axis: one shift per row
    stacked = hodges_lehmann(np.stack([A, A + 1]), np.stack([B, B]), axis=-1)
    assert stacked == pytest.approx([np.median(pairs), np.median(pairs) + 1])


def test_the_probability_of_improvement_is_mann_whitneys_u_over_n_m():
    """P(A < B) + P(A = B) / 2 = U_B / (n m), with U_B scipy's statistic for B against A."""
    u_b = stats.mannwhitneyu(B, A, method="exact").statistic
    assert probability_lower(A, B) == pytest.approx(u_b / (len(A) * len(B)))
    assert probability_lower(np.array([1.0, 2.0]), np.array([2.0, 3.0])) == pytest.approx((1 + 1 + 0.5 + 1) / 4)


def test_bootstrap_intervals_are_scipys_percentile_bootstrap_with_the_fixed_seed():
    found = level(A)
    expected = stats.bootstrap(
        (A,), np.median, n_resamples=estimates.BOOTSTRAP_RESAMPLES, method="percentile", rng=np.random.default_rng(0)
    ).confidence_interval
    assert found.median_ci == pytest.approx((expected.low, expected.high))
    assert found.median == np.median(A) and found.n == 10
    assert level(A).median_ci == found.median_ci  # reproducible from the CSVs
    assert found.median_ci[0] <= np.median(A) <= found.median_ci[1]
    assert level(np.array([3.0, 3.0])).median_ci is None  # constant: no interval
    assert level(np.array([])).n == 0


def test_a_comparison_has_the_exact_rank_test_and_welch_beside_it():
    a, b = np.log(A), np.log(B)
    shift = compare(a, b, lower_is_better=True)
    assert shift.p_rank == pytest.approx(stats.mannwhitneyu(a, b, method="exact").pvalue)
    welch = stats.ttest_ind(a, b, equal_var=False)
    assert shift.p_welch == pytest.approx(welch.pvalue)
    assert shift.welch_ci == pytest.approx(tuple(welch.confidence_interval(0.95)))
    assert shift.shift == pytest.approx(hodges_lehmann(a, b))
    assert shift.p_better == pytest.approx(probability_lower(a, b))  # lower FID is better
    assert shift.shift_ci[0] <= shift.shift <= shift.shift_ci[1]
    higher = compare(b, a, lower_is_better=False)  # AUROC: higher is better
    assert higher.p_better == pytest.approx(probability_lower(a, b))


def test_the_smallest_exact_two_sided_p_at_five_and_ten_seeds():
    assert compare(np.arange(5.0), np.arange(5.0) + 10, True).p_rank == pytest.approx(2 / 252)
    assert compare(np.arange(10.0), np.arange(10.0) + 20, True).p_rank == pytest.approx(2 / 184756)


@pytest.mark.parametrize(("failures", "runs"), [(0, 10), (1, 10), (3, 10), (10, 10)])
def test_the_failure_rate_interval_is_clopper_pearson(failures, runs):
    low, high = failure_interval(failures, runs)
    # the exact interval from the beta quantiles
    expected_low = 0.0 if failures == 0 else stats.beta.ppf(0.025, failures, runs - failures + 1)
    expected_high = 1.0 if failures == runs else stats.beta.ppf(0.975, failures + 1, runs - failures)
    assert (low, high) == pytest.approx((expected_low, expected_high))
