"""What the seeds can detect (runner.report.power): the exact null distribution of Mann-Whitney's U against
scipy's exact p-values, the minimum detectable shift's power checked by an independent simulation with scipy's
test, and seeds_needed."""

import math

import numpy as np
import pytest
from scipy import stats

from runner.report.power import (
    POWER,
    critical_u,
    mann_whitney_null,
    minimum_detectable_shift,
    rank_test_power,
    robust_spread,
    seeds_needed,
)


@pytest.mark.parametrize(("n", "m"), [(3, 4), (5, 5), (6, 4)])
def test_the_null_distribution_gives_scipys_exact_p_values(n, m):
    """For every U: build samples with exactly that U and compare 2 P(U <= u) with scipy's exact two-sided p."""
    null = mann_whitney_null(n, m)
    assert null.sum() == pytest.approx(1.0)
    assert null == pytest.approx(null[::-1])  # symmetric
    rng = np.random.default_rng(0)
    for _ in range(40):
        a, b = rng.permutation(n + m)[:n].astype(float), None
        b = np.setdiff1d(np.arange(n + m, dtype=float), a)
        u = int((a[:, None] > b[None, :]).sum())
        expected = stats.mannwhitneyu(a, b, alternative="two-sided", method="exact").pvalue
        assert min(1.0, 2 * min(null[: u + 1].sum(), null[u:].sum())) == pytest.approx(expected)


def test_critical_values_and_when_no_outcome_reaches_alpha():
    assert critical_u(5, 5, 0.05) == 2  # P(U <= 2) = 4 / 252: 2 x 0.0159 <= 0.05; U <= 3 gives 0.056
    assert critical_u(5, 5, 0.05 / 16) is None  # the smallest two-sided p at 5 vs 5 is 2 / 252 = 0.0079
    assert critical_u(10, 10, 0.05 / 16) is not None  # 2 / 184756 at 10 vs 10


def test_the_minimum_detectable_shift_has_80_percent_power_by_an_independent_simulation():
    """At the MDE (10 vs 10 seeds, alpha 0.05 / 6), draws from the normal model tested with scipy's exact test
    reject 80% of the time (400 draws: a standard error of 0.02)."""
    alpha, spread = 0.05 / 6, 0.3
    mde = minimum_detectable_shift(10, 10, alpha, spread)
    rng = np.random.default_rng(12345)
    rejected = 0
    for _ in range(400):
        a, b = rng.normal(mde, spread, 10), rng.normal(0.0, spread, 10)
        rejected += stats.mannwhitneyu(a, b, method="exact").pvalue <= alpha
    assert rejected / 400 == pytest.approx(POWER, abs=0.07)
    assert rank_test_power(mde / spread * 0.5, 10, 10, alpha) < 0.5  # half the shift: far less power


def test_no_mde_where_the_test_cannot_reject():
    assert minimum_detectable_shift(5, 5, 0.05 / 16, 1.0) is None
    assert minimum_detectable_shift(10, 10, 0.05, 0.0) is None


def test_the_robust_spread_ignores_one_collapse():
    """1.4826 x MAD pooled: a collapsed seed far out changes it little; the standard deviation jumps."""
    base = np.log([60.0, 62.0, 64.0, 66.0, 68.0])
    with_collapse = np.log([60.0, 62.0, 64.0, 66.0, 2000.0])
    assert robust_spread(base, base) == pytest.approx(1.4826 * np.median(np.abs(base - np.median(base))))
    assert robust_spread(with_collapse, base) < 1.3 * robust_spread(base, base)
    assert np.std(with_collapse, ddof=1) > 20 * np.std(base, ddof=1)


def test_seeds_needed_reaches_the_power_and_one_fewer_does_not():
    alpha = 0.05
    n = seeds_needed(1.5, 1.0, alpha)
    assert rank_test_power(1.5, n, n, alpha) >= POWER > rank_test_power(1.5, n - 1, n - 1, alpha)
    # the t-test's n for d = 1.5 is 8; the rank test needs about as many (Pitman efficiency 3 / pi)
    assert 8 <= n <= math.ceil(8 / (3 / math.pi)) + 1
    assert seeds_needed(0.2, 1.0, alpha) is None  # beyond 50 seeds: said, not capped silently
