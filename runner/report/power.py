"""What the seeds at hand can detect with the test the verdicts use (docs/STATISTICS.md): the exact two-sided
Mann-Whitney test at the alpha of Holm's first step, under a normal location-shift model whose spread is the
pooled robust standard deviation (1.4826 x the median absolute deviation) of the two groups.

The exact null distribution of U comes from the usual recursion; the power at a shift is estimated by simulation
with a fixed seed (common random numbers across shifts, so the bisection for the minimum detectable shift is
monotone).
"""

import math
from functools import cache

import numpy as np

POWER = 0.8
SIMULATIONS = 4000
SIMULATION_SEED = 0
MAX_SEEDS_SEARCHED = 50  # seeds_needed beyond this is reported as "more than 50", never a silent cap


@cache
def mann_whitney_null(n: int, m: int) -> np.ndarray:
    """P(U = u) for u = 0 .. n m under the null (no ties): the number of arrangements with u pairs a_i > b_j,
    over C(n + m, n). Recursion on the largest value: it is an a (adding m to U) or a b."""
    counts = np.zeros((n + 1, m + 1, n * m + 1))
    counts[0, :, 0] = 1
    counts[:, 0, 0] = 1
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            counts[i, j, j:] += counts[i - 1, j, : n * m + 1 - j]
            counts[i, j] += counts[i, j - 1]
    return counts[n, m] / math.comb(n + m, n)


def critical_u(n: int, m: int, alpha: float) -> int | None:
    """The largest u whose two-sided exact p (2 P(U <= u)) is <= alpha: the test rejects at U <= u or
    U >= n m - u. None when no outcome reaches alpha (too few seeds for this alpha)."""
    cumulative = np.cumsum(mann_whitney_null(n, m))
    reaching = np.nonzero(2 * cumulative <= alpha * (1 + 1e-12))[0]
    return int(reaching[-1]) if len(reaching) else None


def robust_spread(a: np.ndarray, b: np.ndarray) -> float:
    """The pooled robust standard deviation: 1.4826 x each group's median absolute deviation, pooled by df."""
    spreads = []
    for values in (np.asarray(a, dtype=float), np.asarray(b, dtype=float)):
        mad = float(np.median(np.abs(values - np.median(values))))
        spreads.append((len(values) - 1, (1.4826 * mad) ** 2))
    df = sum(d for d, _ in spreads)
    return math.sqrt(sum(d * v for d, v in spreads) / df) if df > 0 else 0.0


def _draws(n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(SIMULATION_SEED)
    return rng.standard_normal((SIMULATIONS, n)), rng.standard_normal((SIMULATIONS, m))


def rank_test_power(shift: float, n: int, m: int, alpha: float) -> float:
    """Power of the exact two-sided Mann-Whitney test at alpha against a shift of `shift` standard deviations
    (normal model, n and m seeds), by simulation."""
    critical = critical_u(n, m, alpha)
    if critical is None:
        return 0.0
    a, b = _draws(n, m)
    u = (a[:, :, None] + shift > b[:, None, :]).sum(axis=(1, 2))
    return float(((u <= critical) | (u >= n * m - critical)).mean())


def minimum_detectable_shift(n: int, m: int, alpha: float, spread: float) -> float | None:
    """The shift (in the endpoint's units) detected with POWER; None when no outcome of the test reaches alpha
    or the spread is 0."""
    if critical_u(n, m, alpha) is None or spread <= 0:
        return None
    low, high = 0.0, 1.0
    while rank_test_power(high, n, m, alpha) < POWER:
        low, high = high, 2 * high
        if high > 1e3:
            return None
    for _ in range(30):
        middle = (low + high) / 2
        low, high = (middle, high) if rank_test_power(middle, n, m, alpha) < POWER else (low, middle)
    return high * spread


def seeds_needed(effect: float, spread: float, alpha: float) -> int | None:
    """Seeds per group (equal groups) for which the test detects `effect` with POWER; None beyond
    MAX_SEEDS_SEARCHED (reported as such)."""
    if spread <= 0:
        return 2 if critical_u(2, 2, alpha) is not None else None
    shift = effect / spread

    def enough(n: int) -> bool:
        return rank_test_power(shift, n, n, alpha) >= POWER

    if not enough(MAX_SEEDS_SEARCHED):
        return None
    low, high = 1, MAX_SEEDS_SEARCHED  # the power grows with n: the smallest n that reaches POWER, by bisection
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if enough(middle) else (middle, high)
    return high
