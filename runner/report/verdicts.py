"""Verdicts: each arm against its profile's baseline, per metric, corrected for the family of comparisons.

For one profile the family is every (arm x metric) comparison with the baseline that can be tested: both sides
have at least two seeds with the metric and the values are not saturated (all runs of the arm and the baseline
at one value, e.g. AUROC 1.000). Per comparison:

- p: Welch's t-test (scipy.stats.ttest_ind, equal_var=False), two-sided;
- p_holm: Holm's step-down adjustment over the family (statsmodels multipletests, method "holm");
- verdict at adjusted 5%: better / worse (by the metric's direction: FID lower, AUROC higher is better) or
  "no difference detected";
- mde: the minimum detectable difference at 80% power, two-sided alpha 0.05, for the seeds at hand: the effect
  size statsmodels' TTestIndPower solves for, times the pooled standard deviation of the two groups;
- seeds_needed: the seeds per arm (as many as the baseline) that would detect `effect` at 80% power.
"""

import math
import warnings
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestIndPower

from runner.report.stats import BASELINE, FID, Group, MetricKey, welch_interval

ALPHA = 0.05
POWER = 0.8
MAX_SEEDS = 10_000
BETTER, WORSE, NO_DIFFERENCE, SATURATED, UNTESTED = (
    "better",
    "worse",
    "no difference detected",
    "saturated",
    "not tested",
)
DEFAULT_EFFECT = "fid=10%,auroc=0.02"  # summarize --effect: 10% of the baseline's mean FID, 0.02 of AUROC


@dataclass(frozen=True)
class Effect:
    """The difference seeds_needed is computed for: absolute, or a fraction of the baseline mean."""

    fid: float
    fid_relative: bool
    auroc: float

    def size(self, key: MetricKey, baseline_mean: float) -> float:
        if key.ood_set is not None:
            return self.auroc
        return self.fid * abs(baseline_mean) if self.fid_relative else self.fid


def parse_effect(text: str) -> Effect:
    """'fid=10%,auroc=0.02' (either part may be left out: its default stays); ValueError with the reason."""
    values = {"fid": "10%", "auroc": "0.02"}
    for part in filter(None, (item.strip() for item in text.split(","))):
        name, equals, value = part.partition("=")
        if name.strip() not in values or not equals:
            raise ValueError(f"--effect {text}: expected fid=X or fid=X% and auroc=Y, comma-separated")
        values[name.strip()] = value.strip()
    try:
        relative = values["fid"].endswith("%")
        fid = float(values["fid"].rstrip("%")) / (100 if relative else 1)
        auroc = float(values["auroc"])
    except ValueError:
        raise ValueError(f"--effect {text}: the sizes must be numbers") from None
    if not (fid > 0 and math.isfinite(fid) and 0 < auroc <= 1):
        raise ValueError(f"--effect {text}: expected fid > 0 and 0 < auroc <= 1")
    return Effect(fid, relative, auroc)


@dataclass(frozen=True)
class Comparison:
    """One arm x metric against the baseline of the same profile."""

    experiment: str
    profile: str
    key: MetricKey
    n: int
    n_baseline: int
    diff: float | None
    ci95: tuple[float, float] | None
    p: float | None
    p_holm: float | None
    verdict: str
    mde: float | None
    seeds_needed: int | None

    @property
    def tested(self) -> bool:
        return self.p is not None


def lower_is_better(key: MetricKey) -> bool:
    return key == FID


def pooled_std(a: np.ndarray, b: np.ndarray) -> float:
    """sqrt(((n_a - 1) s_a^2 + (n_b - 1) s_b^2) / (n_a + n_b - 2))."""
    return math.sqrt(((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / (len(a) + len(b) - 2))


def minimum_detectable_difference(n: int, n_baseline: int, spread: float) -> float:
    """The difference a two-sided two-sample t-test at ALPHA detects with POWER for these group sizes and spread
    (statsmodels' power of the pooled-variance t-test; Welch's test has about the same power at these sizes)."""
    d = TTestIndPower().solve_power(
        effect_size=None, nobs1=n, alpha=ALPHA, power=POWER, ratio=n_baseline / n, alternative="two-sided"
    )
    return float(d) * spread


def _power(d: float, n: int) -> float:
    """Power of the two-sided two-sample t-test at ALPHA with n seeds per group. For a large d scipy's noncentral
    t returns nan for the far lower tail (below 1e-15 there); the upper tail alone is then the power."""
    analysis = TTestIndPower()
    power = analysis.power(effect_size=d, nobs1=n, alpha=ALPHA, ratio=1.0)
    if math.isfinite(power):
        return float(power)
    return float(analysis.power(effect_size=d, nobs1=n, alpha=ALPHA / 2, ratio=1.0, alternative="larger"))


def seeds_for(effect: float, spread: float) -> int:
    """Seeds per group (equal groups) for which a two-sided t-test at ALPHA detects `effect` with POWER."""
    if spread == 0:
        return 2
    d = effect / spread
    if d < 1e-3:
        return MAX_SEEDS
    if _power(d, 2) >= POWER:
        return 2  # the solver finds no root below two seeds (it returns nan for a large d)
    n = TTestIndPower().solve_power(effect_size=d, nobs1=None, alpha=ALPHA, power=POWER, ratio=1.0)
    if not math.isfinite(n):  # the solver met the lower tail's nan on its way: the smallest n by search
        n = next((k for k in range(3, MAX_SEEDS) if _power(d, k) >= POWER), MAX_SEEDS)
    return int(min(MAX_SEEDS, max(2, math.ceil(float(n)))))


def is_saturated(a: np.ndarray, b: np.ndarray) -> bool:
    """Every run of the arm and the baseline at one value (e.g. AUROC 1.000): nothing to compare."""
    both = np.concatenate([a, b])
    return len(both) > 0 and float(both.max() - both.min()) <= 1e-12


def _compare(group: Group, base: Group, key: MetricKey, effect: Effect) -> Comparison:
    a, b = np.asarray(group.stat(key).values), np.asarray(base.stat(key).values)
    untested = Comparison(
        group.experiment, group.profile, key, len(a), len(b), None, None, None, None, UNTESTED, None, None
    )
    if not len(a) or not len(b):
        return untested
    diff = float(a.mean() - b.mean())
    if is_saturated(a, b):
        return replace(untested, diff=diff, verdict=SATURATED)
    if len(a) < 2 or len(b) < 2:
        return replace(untested, diff=diff)
    spread = pooled_std(a, b)
    with warnings.catch_warnings():  # one side constant (a baseline at AUROC 1.000 on every seed): scipy warns of
        warnings.simplefilter("ignore", RuntimeWarning)  # that side's moments; Welch's p is still well defined
        p = float(stats.ttest_ind(a, b, equal_var=False).pvalue) if spread > 0 else None
    return replace(
        untested,
        diff=diff,
        ci95=welch_interval(a, b),
        p=p,
        verdict=UNTESTED if p is None else NO_DIFFERENCE,
        mde=minimum_detectable_difference(len(a), len(b), spread),
        seeds_needed=seeds_for(effect.size(key, float(b.mean())), spread),
    )


def holm(comparisons: list[Comparison]) -> list[Comparison]:
    """Holm-adjusted p-values and verdicts over the tested comparisons (one family); the rest unchanged."""
    tested = [c for c in comparisons if c.tested]
    if not tested:
        return comparisons
    _, adjusted, _, _ = multipletests([c.p for c in tested], alpha=ALPHA, method="holm")
    done = {}
    for c, p_holm in zip(tested, adjusted, strict=True):
        verdict = NO_DIFFERENCE
        if p_holm < ALPHA:
            verdict = BETTER if (c.diff < 0) == lower_is_better(c.key) else WORSE
        done[id(c)] = replace(c, p_holm=float(p_holm), verdict=verdict)
    return [done.get(id(c), c) for c in comparisons]


def compare_groups(groups: list[Group], metrics: list[MetricKey], effect: Effect) -> list[Comparison]:
    """Every arm x metric against the baseline of its profile, Holm-adjusted per profile (the family)."""
    baselines = {g.profile: g for g in groups if g.experiment == BASELINE}
    result: list[Comparison] = []
    for profile in dict.fromkeys(g.profile for g in groups):
        base = baselines.get(profile)
        if base is None:
            continue
        family = [
            _compare(g, base, key, effect)
            for g in groups
            if g.profile == profile and g is not base
            for key in metrics
            if g.has(key) and base.has(key)
        ]
        result += holm(family)
    return result
