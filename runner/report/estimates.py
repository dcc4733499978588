"""Estimates that fit heavy-tailed seeds (docs/STATISTICS.md): per arm the median and the interquartile mean with
bootstrap intervals; against the baseline the Hodges-Lehmann shift and the probability of improvement with
bootstrap intervals, the exact Mann-Whitney test, and Welch's t-test beside them.

FID enters every comparison on the log scale (a shift of log FID is a ratio of FIDs); AUROC on its own scale.
"""

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

LEVEL = 0.95
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0  # every interval is reproducible from the CSVs


def _rng() -> np.random.Generator:
    return np.random.default_rng(BOOTSTRAP_SEED)


def iqm(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """The interquartile mean: the mean of the middle 50% (scipy's trim_mean, 25% cut from each end)."""
    return stats.trim_mean(values, 0.25, axis=axis)


def _interval(result) -> tuple[float, float] | None:
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    return (low, high) if math.isfinite(low) and math.isfinite(high) else None


def one_sample_interval(values: np.ndarray, statistic) -> tuple[float, float] | None:
    """Percentile bootstrap interval (LEVEL) of statistic(values); None for fewer than two or constant values."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2 or np.ptp(values) == 0:
        return None
    result = stats.bootstrap(
        (values,),
        statistic,
        n_resamples=BOOTSTRAP_RESAMPLES,
        confidence_level=LEVEL,
        method="percentile",
        rng=_rng(),
        vectorized=True,
    )
    return _interval(result)


def pairwise_differences(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Every a_i - b_j (the last two axes hold a and b's samples)."""
    return a[..., :, None] - b[..., None, :]


def hodges_lehmann(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    """The Hodges-Lehmann shift of a against b: the median of all pairwise differences a_i - b_j."""
    a, b = np.moveaxis(np.asarray(a, dtype=float), axis, -1), np.moveaxis(np.asarray(b, dtype=float), axis, -1)
    differences = pairwise_differences(a, b)
    return np.median(differences.reshape(*differences.shape[:-2], -1), axis=-1)


def probability_lower(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    """P(A < B) + P(A = B) / 2 over all pairs: the probability that a draw of a is below a draw of b."""
    a, b = np.moveaxis(np.asarray(a, dtype=float), axis, -1), np.moveaxis(np.asarray(b, dtype=float), axis, -1)
    differences = pairwise_differences(a, b)
    below = (differences < 0).mean(axis=(-2, -1))
    return below + 0.5 * (differences == 0).mean(axis=(-2, -1))


def two_sample_interval(a: np.ndarray, b: np.ndarray, statistic) -> tuple[float, float] | None:
    """Percentile bootstrap interval (LEVEL) of statistic(a, b), each group resampled on its own."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or len(b) < 2 or np.ptp(np.concatenate([a, b])) == 0:
        return None
    result = stats.bootstrap(
        (a, b),
        statistic,
        n_resamples=BOOTSTRAP_RESAMPLES,
        confidence_level=LEVEL,
        method="percentile",
        rng=_rng(),
        vectorized=True,
        paired=False,
    )
    return _interval(result)


@dataclass(frozen=True)
class Level:
    """One arm's values on an endpoint's scale: n, median and IQM with their bootstrap intervals, mean and SD."""

    n: int
    median: float | None
    median_ci: tuple[float, float] | None
    iqm: float | None
    iqm_ci: tuple[float, float] | None
    mean: float | None
    std: float | None


def level(values: np.ndarray) -> Level:
    values = np.asarray(values, dtype=float)
    if not len(values):
        return Level(0, None, None, None, None, None, None)
    return Level(
        n=len(values),
        median=float(np.median(values)),
        median_ci=one_sample_interval(values, np.median),
        iqm=float(iqm(values)),
        iqm_ci=one_sample_interval(values, iqm),
        mean=float(values.mean()),
        std=float(values.std(ddof=1)) if len(values) > 1 else None,
    )


@dataclass(frozen=True)
class Shift:
    """An arm against the baseline on one endpoint's scale (log FID, or AUROC).

    shift: Hodges-Lehmann a - b with its bootstrap interval; p_better: the probability that a seed of the arm is
    better than a seed of the baseline (lower for FID, higher for AUROC) with its bootstrap interval; p_rank: the
    exact two-sided Mann-Whitney p; p_welch and welch_ci: Welch's t-test of the means and its interval."""

    shift: float
    shift_ci: tuple[float, float] | None
    p_better: float
    p_better_ci: tuple[float, float] | None
    p_rank: float | None
    p_welch: float | None
    welch_ci: tuple[float, float] | None


def welch(a: np.ndarray, b: np.ndarray) -> tuple[float | None, tuple[float, float] | None]:
    """Welch's two-sided p and the LEVEL interval of mean(a) - mean(b); None where undefined."""
    if len(a) < 2 or len(b) < 2 or (np.ptp(a) == 0 and np.ptp(b) == 0):
        return None, None
    with warnings.catch_warnings():  # one side constant (a baseline at AUROC 1.000 on every seed): scipy warns of
        warnings.simplefilter("ignore", RuntimeWarning)  # that side's moments; Welch's p is still well defined
        test = stats.ttest_ind(a, b, equal_var=False)
        interval = test.confidence_interval(LEVEL)
    return float(test.pvalue), (float(interval.low), float(interval.high))


def compare(a: np.ndarray, b: np.ndarray, lower_is_better: bool) -> Shift:
    """The arm's values a against the baseline's b (both on the endpoint's scale)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)

    def better(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        return probability_lower(x, y, axis) if lower_is_better else probability_lower(-x, -y, axis)

    constant = np.ptp(np.concatenate([a, b])) == 0
    p_rank = None if constant else float(stats.mannwhitneyu(a, b, alternative="two-sided", method="exact").pvalue)
    p_welch, welch_ci = welch(a, b)
    return Shift(
        shift=float(hodges_lehmann(a, b)),
        shift_ci=two_sample_interval(a, b, hodges_lehmann),
        p_better=float(better(a, b)),
        p_better_ci=two_sample_interval(a, b, better),
        p_rank=p_rank,
        p_welch=p_welch,
        welch_ci=welch_ci,
    )


def failure_interval(failures: int, runs: int) -> tuple[float, float]:
    """The exact (Clopper-Pearson) LEVEL interval of a failure rate."""
    interval = stats.binomtest(failures, runs).proportion_ci(confidence_level=LEVEL, method="exact")
    return float(interval.low), float(interval.high)
