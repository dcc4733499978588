"""Verdicts: each arm against its profile's baseline, per endpoint, within the family of its question
(docs/STATISTICS.md, written before the evidence was summarized).

- Endpoints: the primary ones are log FID and the interpolation set's marginal AUROC (PRIMARY); every other AUROC
  is secondary. FID is compared on the log scale.
- Families: the arms of one question (experiments.toml's `question`: replace, negatives, remove, control; an arm
  without one is its own family) at one profile, primary and secondary endpoints apart. Holm's adjustment
  (statsmodels) runs within a family.
- Test: the exact two-sided Mann-Whitney test (scipy); verdict at Holm-adjusted 5%: better / worse by the
  direction of the Hodges-Lehmann shift (FID lower, AUROC higher is better), else "no difference detected".
  Welch's t-test (on log FID) is reported beside it, not used for the verdict.
- MDE: the shift the same test detects with 80% power at the alpha of Holm's first step (5% / family size),
  under a normal model with the pooled robust spread (runner.report.power); seeds_needed: the seeds per arm that
  detect `--effect` so, or None beyond 50.
"""

import math
from dataclasses import dataclass, replace

import numpy as np
from statsmodels.stats.multitest import multipletests

from runner.report.estimates import Shift, compare
from runner.report.power import minimum_detectable_shift, robust_spread, seeds_needed
from runner.report.stats import BASELINE, FID, Group, MetricKey

ALPHA = 0.05
PRIMARY = (FID, MetricKey("interpolation", "marginal"))
BETTER, WORSE, NO_DIFFERENCE, SATURATED, UNTESTED = (
    "better",
    "worse",
    "no difference detected",
    "saturated",
    "not tested",
)
DEFAULT_EFFECT = "fid=10%,auroc=0.02"  # summarize --effect: a FID ratio of 1.1 (or 10 FID), 0.02 of AUROC


@dataclass(frozen=True)
class Effect:
    """The difference seeds_needed is computed for: a FID ratio (fid_relative) or FID units, and AUROC units."""

    fid: float
    fid_relative: bool
    auroc: float

    def size(self, key: MetricKey, baseline_median: float) -> float:
        """On the endpoint's comparison scale: log FID (log of the ratio), or AUROC."""
        if key.ood_set is not None:
            return self.auroc
        if self.fid_relative:
            return math.log1p(self.fid)
        return math.log1p(self.fid / baseline_median) if baseline_median > 0 else math.inf


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


def lower_is_better(key: MetricKey) -> bool:
    return key == FID


def scale(key: MetricKey, values: tuple[float, ...]) -> np.ndarray:
    """An endpoint's values on its comparison scale: log FID (positive FIDs only), AUROC as it is."""
    array = np.asarray(values, dtype=float)
    return np.log(array[array > 0]) if key == FID else array


@dataclass(frozen=True)
class Comparison:
    """One arm x endpoint against the baseline of the same profile, on the endpoint's scale (log FID, AUROC): the
    shift and its tests, Holm's adjusted p within the family, the verdict, the MDE (same scale) and seeds_needed."""

    experiment: str
    profile: str
    key: MetricKey
    family: str
    primary: bool
    n: int
    n_baseline: int
    shift: Shift | None
    p_holm: float | None
    verdict: str
    mde: float | None
    seeds_needed: int | None
    family_size: int = 0

    @property
    def tested(self) -> bool:
        return self.shift is not None and self.shift.p_rank is not None

    @property
    def p(self) -> float | None:
        return None if self.shift is None else self.shift.p_rank

    @property
    def alpha_first_step(self) -> float:
        return ALPHA / max(self.family_size, 1)


def is_saturated(a: np.ndarray, b: np.ndarray) -> bool:
    """Every run of the arm and the baseline at one value (e.g. AUROC 1.000): nothing to compare."""
    both = np.concatenate([a, b])
    return len(both) > 0 and float(both.max() - both.min()) <= 1e-12


def _testable(a: np.ndarray, b: np.ndarray) -> bool:
    return len(a) >= 2 and len(b) >= 2 and not is_saturated(a, b)


def _compare(group: Group, base: Group, key: MetricKey, family: str, size: int, effect: Effect) -> Comparison:
    """The comparison, with the MDE and seeds_needed at the alpha of Holm's first step in a family of `size`."""
    a, b = scale(key, group.stat(key).values), scale(key, base.stat(key).values)
    c = Comparison(
        group.experiment, group.profile, key, family, key in PRIMARY, len(a), len(b), None, None, UNTESTED, None,
        None, size,
    )  # fmt: skip
    if len(a) and len(b) and is_saturated(a, b):
        return replace(c, verdict=SATURATED)
    if not _testable(a, b):
        return c
    spread = robust_spread(a, b)
    needed = seeds_needed(effect.size(key, float(np.median(base.stat(key).values))), spread, c.alpha_first_step)
    return replace(
        c,
        shift=compare(a, b, lower_is_better(key)),
        verdict=NO_DIFFERENCE,
        mde=minimum_detectable_shift(len(a), len(b), c.alpha_first_step, spread),
        seeds_needed=needed,
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
            verdict = BETTER if (c.shift.shift < 0) == lower_is_better(c.key) else WORSE
        done[id(c)] = replace(c, p_holm=float(p_holm), verdict=verdict)
    return [done.get(id(c), c) for c in comparisons]


def compare_groups(
    groups: list[Group], metrics: list[MetricKey], effect: Effect, questions: dict[str, str] | None = None
) -> list[Comparison]:
    """Every arm x endpoint against the baseline of its profile, Holm-adjusted within each family (a question's
    arms at one profile, primary and secondary endpoints apart). `questions`: experiment -> its question."""
    questions = questions or {}
    baselines = {g.profile: g for g in groups if g.experiment == BASELINE}
    planned = [
        (g, baselines[g.profile], key, (g.profile, questions.get(g.experiment, g.experiment), key in PRIMARY))
        for g in groups
        if g.profile in baselines and g is not baselines[g.profile]
        for key in metrics
        if g.has(key) and baselines[g.profile].has(key)
    ]
    sizes: dict[tuple[str, str, bool], int] = {}
    for g, base, key, family in planned:
        testable = _testable(scale(key, g.stat(key).values), scale(key, base.stat(key).values))
        sizes[family] = sizes.get(family, 0) + testable
    families: dict[tuple[str, str, bool], list[Comparison]] = {}
    for g, base, key, family in planned:
        families.setdefault(family, []).append(_compare(g, base, key, family[1], sizes[family], effect))
    result = [c for members in families.values() for c in holm(members)]
    order = {(g.experiment, g.profile): i for i, g in enumerate(groups)}
    return sorted(result, key=lambda c: (order[(c.experiment, c.profile)], metrics.index(c.key)))
