"""Statistics over seeds: metric keys, per-metric n/mean/std, grouping runs, differences from the baseline."""

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from runner.layout import SMOKE, point_label
from runner.metrics.sample_quality import SampleQuality
from runner.result import RunResult

BASELINE = "baseline"
SCORES = ("marginal", "joint")
LEVEL = 0.95
WEAK_SEED_FACTOR = 1.5  # a seed is weak when its FID is above 1.5 x its arm's median FID (docs/STABILITY.md)
WEAK_SEED_MIN_RUNS = 3


@dataclass(frozen=True)
class MetricKey:
    """One metric: FID (ood_set None) or the AUROC of one score against one OOD set."""

    ood_set: str | None = None
    score: str | None = None

    @property
    def column(self) -> str:
        """Its name in the CSVs: fid or auroc_<set>_<score>."""
        return "fid" if self.ood_set is None else f"auroc_{self.ood_set}_{self.score}"

    @property
    def title(self) -> str:
        """Its name for a figure: FID, or `AUROC vs uniform noise, joint score`."""
        return "FID" if self.ood_set is None else f"AUROC vs {self.ood_set.replace('_', ' ')}, {self.score} score"

    @property
    def tag(self) -> str:
        """Its TensorBoard tag: fid or auroc/<set>/<score>."""
        return "fid" if self.ood_set is None else f"auroc/{self.ood_set}/{self.score}"

    def value(self, run: RunResult) -> float | None:
        """The run's value of the metric, None where it has none."""
        if self.ood_set is None:
            return run.fid
        scores = run.auroc.get(self.ood_set)
        return None if scores is None or self.score is None else getattr(scores, self.score)

    def evaluated(self, run: RunResult) -> bool:
        """Whether the run was evaluated on the metric at all (FID always; AUROC when it has that OOD set)."""
        return self.ood_set is None or self.ood_set in run.auroc


FID = MetricKey()


@dataclass(frozen=True)
class Stat:
    """A metric over the seeds that have it: n, mean, sample std (ddof=1, None when n < 2)."""

    values: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return float(np.mean(self.values)) if self.values else None

    @property
    def std(self) -> float | None:
        return float(np.std(self.values, ddof=1)) if self.n >= 2 else None


def welch_interval(a: Iterable[float], b: Iterable[float], level: float = LEVEL) -> tuple[float, float] | None:
    """Welch's t interval for mean(a) - mean(b) (Welch-Satterthwaite df); None when a side has < 2 values."""
    x, y = np.fromiter(a, dtype=float), np.fromiter(b, dtype=float)
    if len(x) < 2 or len(y) < 2:
        return None
    diff = float(x.mean() - y.mean())
    vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    se = math.sqrt(vx + vy)
    if se == 0:
        return diff, diff
    df = (vx + vy) ** 2 / (vx**2 / (len(x) - 1) + vy**2 / (len(y) - 1))
    half = float(stats.t.ppf(0.5 + level / 2, df)) * se
    return diff - half, diff + half


@dataclass
class Group:
    """The runs of one experiment x profile (its label: smoke runs apart), ordered by seed."""

    experiment: str
    profile: str
    runs: list[RunResult]
    samples: dict[str, SampleQuality] = field(default_factory=dict)  # run_id -> its samples' quality (failures.py)

    def failed(self, r: RunResult) -> bool | None:
        """Whether the run failed: its samples are not digits (runner.metrics.sample_quality), or, where its
        samples were not judged, the backstop: it collapsed (fid > 0.5 x fid_init). None when neither is known."""
        quality = self.samples.get(r.run_id)
        return quality.failed if quality is not None else r.collapsed

    def failed_seeds(self) -> list[int]:
        return [r.seed for r in self.runs if self.failed(r)]

    def stat(self, key: MetricKey) -> Stat:
        """The metric over the seeds that have it."""
        return Stat(tuple(v for r in self.runs if (v := key.value(r)) is not None))

    def has(self, key: MetricKey) -> bool:
        """Whether any run of the group was evaluated on the metric."""
        return any(key.evaluated(r) for r in self.runs)

    def weak_seeds(self) -> list[tuple[RunResult, float]]:
        """The runs whose FID is above WEAK_SEED_FACTOR x the group's median FID, with their FID / median; none
        for fewer than WEAK_SEED_MIN_RUNS FIDs (a median of two is their mean, and one of them is always above)."""
        fids = self.stat(FID).values
        if len(fids) < WEAK_SEED_MIN_RUNS:
            return []
        median = float(np.median(fids))
        return [(r, r.fid / median) for r in self.runs if r.fid is not None and r.fid > WEAK_SEED_FACTOR * median]


def metric_keys(results: Iterable[RunResult]) -> list[MetricKey]:
    """FID, then marginal and joint AUROC per OOD set, sets in alphabetical order."""
    sets = sorted({name for r in results for name in r.auroc})
    return [FID, *(MetricKey(name, score) for name in sets for score in SCORES)]


def _experiment_rank(order: list[str]) -> Callable[[str], tuple[int, int, str]]:
    position = {name: i for i, name in enumerate(order)}
    return lambda name: (name != BASELINE, position.get(name, len(position)), name)


def profile_label(r: RunResult) -> str:
    """What a run is grouped and compared under: its profile, smoke runs apart from real ones (`tiny-smoke`), and
    each point of a grid apart (`tiny @ energy.beta=0.1`): an arm is compared with the baseline at its point."""
    label = f"{r.profile}-{SMOKE}" if r.smoke else r.profile
    return f"{label} @ {point_label(r.point)}" if r.point else label


def _point_order(r: RunResult) -> tuple:
    """Profile, smoke runs after real ones, then the point by its settings, numbers in numeric order (beta 2
    before 10), a run without a point first."""
    settings = tuple(
        (key, (0, value, "") if isinstance(value, int | float) else (1, 0, json.dumps(value)))
        for key, value in sorted(r.point.items())
    )
    return r.profile, r.smoke, settings


def group_runs(results: Iterable[RunResult], order: list[str] | None = None) -> list[Group]:
    """Groups by profile (alphabetical; a grid's points in the order of their settings), then experiment
    (baseline, then `order`, then alphabetical)."""
    groups: dict[tuple[str, str], list[RunResult]] = {}
    position: dict[str, tuple] = {}
    for r in results:
        label = profile_label(r)
        groups.setdefault((r.experiment, label), []).append(r)
        position[label] = _point_order(r)
    rank = _experiment_rank(order or [])
    keys = sorted(groups, key=lambda k: (position[k[1]], rank(k[0])))
    return [Group(exp, profile, sorted(groups[exp, profile], key=lambda r: r.seed)) for exp, profile in keys]


def difference(group: Group, base: Group | None, key: MetricKey) -> tuple[float | None, float | None, float | None]:
    """(mean - baseline mean, 95% Welch interval low, high); None where not defined."""
    if base is None or base is group:
        return None, None, None
    a, b = group.stat(key), base.stat(key)
    if not a.n or not b.n:
        return None, None, None
    interval = welch_interval(a.values, b.values)
    return a.mean - b.mean, *(interval or (None, None))


def distinct(values: Iterable[Any]) -> Any:
    """The one value all runs share, or every distinct value joined with '; '."""
    unique = sorted(set(values), key=str)
    return unique[0] if len(unique) == 1 else "; ".join(str(v) for v in unique)
