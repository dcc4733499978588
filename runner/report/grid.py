"""Grids: how an arm's difference to the baseline changes along a grid axis (the interaction), per metric.

A profile's runs form a grid when their points (runner.layout) set one axis to several values; a run at the file's
own value of the axis (no point) counts at that value. Per arm x metric, with the baseline's runs at the same
values:

- the difference of the means at each value (as every comparison: summary.csv has them with Welch intervals,
  since each point is compared with the baseline at that point);
- the interaction: ordinary least squares of the metric on arm, x and arm x x (statsmodels), where x is log10 of
  the axis value when the values are positive and span at least a factor of 10, else the value itself. Its
  coefficient is the change of (arm - baseline) per unit of x (per decade of the axis), with a 95% interval and a
  p-value from heteroscedasticity-consistent (HC3) standard errors and Student's t with n - 4 degrees of freedom;
  the p-values are Holm-adjusted over the profile's trends (every arm x metric), as the verdicts are.
"""

import io
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from statsmodels.stats.multitest import multipletests

from runner.config import ExperimentsFile
from runner.config.overrides import flatten
from runner.report.files import write_output
from runner.report.numbers import number, signed
from runner.report.stats import BASELINE, MetricKey
from runner.report.verdicts import ALPHA, is_saturated
from runner.result import COLLAPSE_FRACTION, COLLAPSE_RULE, RunResult


@dataclass(frozen=True)
class Trend:
    """One arm x metric along one axis of a profile's grid."""

    experiment: str
    profile: str
    axis: str
    key: MetricKey
    scale: str  # "log10" or "linear"
    values: tuple[float, ...]  # the axis values where both the arm and the baseline have runs
    differences: tuple[float, ...]  # arm mean - baseline mean at each value
    slope: float  # the interaction coefficient: change of the difference per unit of x
    ci95: tuple[float, float]
    p: float
    p_holm: float | None = None


@dataclass
class Grid:
    """A profile's runs along one axis: (experiment -> [(axis value, run)])."""

    profile: str
    axis: str
    runs: dict[str, list[tuple[float, RunResult]]]

    @property
    def values(self) -> list[float]:
        return sorted({x for members in self.runs.values() for x, _ in members})


def _base_label(r: RunResult) -> str:
    return f"{r.profile}-smoke" if r.smoke else r.profile


def _own_value(experiments: ExperimentsFile | None, r: RunResult, axis: str) -> Any:
    """The axis's value in the experiment's own config (for a run without a point), or None when unknown."""
    if experiments is None or r.experiment not in experiments.experiments or r.profile not in experiments.profiles:
        return None
    return flatten(experiments.resolve(r.experiment, r.profile, r.seed, smoke=r.smoke).hashed_dict()).get(axis)


def find_grids(results: list[RunResult], experiments: ExperimentsFile | None) -> list[Grid]:
    """The profiles whose points vary exactly one numeric axis over at least two values."""
    grids = []
    for profile in sorted({_base_label(r) for r in results}):
        members = [r for r in results if _base_label(r) == profile]
        axes = {key for r in members for key in r.point}
        if len(axes) != 1:
            continue
        axis = axes.pop()
        runs: dict[str, list[tuple[float, RunResult]]] = {}
        for r in members:
            value = r.point[axis] if r.point else _own_value(experiments, r, axis)
            if set(r.point) - {axis} or isinstance(value, bool) or not isinstance(value, int | float):
                continue
            runs.setdefault(r.experiment, []).append((float(value), r))
        grid = Grid(profile, axis, runs)
        if BASELINE in runs and len(grid.values) >= 2:
            grids.append(grid)
    return grids


def _x(values: np.ndarray, scale: str) -> np.ndarray:
    return np.log10(values) if scale == "log10" else values


def _scale(values: list[float]) -> str:
    positive = all(v > 0 for v in values)
    return "log10" if positive and max(values) / min(values) >= 10 else "linear"


def trend(grid: Grid, experiment: str, key: MetricKey) -> Trend | None:
    """The arm's interaction with the axis for one metric; None when it cannot be estimated (fewer than two
    shared values, too few runs, a saturated metric)."""
    rows = [
        (arm, x, v)
        for arm, name in ((1.0, experiment), (0.0, BASELINE))
        for x, r in grid.runs.get(name, [])
        if (v := key.value(r)) is not None and math.isfinite(v)
    ]
    shared = sorted({x for arm, x, _ in rows if arm} & {x for arm, x, _ in rows if not arm})
    rows = [row for row in rows if row[1] in shared]
    values = np.array([v for *_, v in rows])
    if len(shared) < 2 or len(rows) <= 4 or is_saturated(values, values[:0]):
        return None
    scale = _scale(shared)
    data = {"arm": [a for a, _, _ in rows], "x": _x(np.array([x for _, x, _ in rows]), scale), "y": values}
    # HC3 standard errors: the cells' spreads differ by orders of magnitude (a collapsed arm beside a learned one),
    # so the interval does not pool them, as Welch's test does not for the per-point comparisons
    fit = smf.ols("y ~ arm * x", data=pd.DataFrame(data)).fit(cov_type="HC3", use_t=True)
    low, high = fit.conf_int(alpha=ALPHA).loc["arm:x"]
    means = {
        (arm, x): float(np.mean([v for a, xx, v in rows if a == arm and xx == x])) for arm in (0.0, 1.0) for x in shared
    }
    return Trend(
        experiment,
        grid.profile,
        grid.axis,
        key,
        scale,
        tuple(shared),
        tuple(means[1.0, x] - means[0.0, x] for x in shared),
        float(fit.params["arm:x"]),
        (float(low), float(high)),
        float(fit.pvalues["arm:x"]),
    )


def trends(grids: list[Grid], metrics: list[MetricKey]) -> list[Trend]:
    """Every arm x metric of every grid, Holm-adjusted per profile."""
    found: list[Trend] = []
    for grid in grids:
        family = [
            t for name in grid.runs if name != BASELINE for key in metrics if (t := trend(grid, name, key)) is not None
        ]
        if family:
            _, adjusted, _, _ = multipletests([t.p for t in family], alpha=ALPHA, method="holm")
            family = [replace(t, p_holm=float(p)) for t, p in zip(family, adjusted, strict=True)]
        found += family
    return found


GRID_COLUMNS = [
    "experiment",
    "profile",
    "axis",
    "metric",
    "x",
    "values",
    "differences",
    "interaction",
    "interaction_ci_low",
    "interaction_ci_high",
    "interaction_p",
    "interaction_p_holm",
]


def grid_rows(found: list[Trend]) -> list[dict[str, Any]]:
    """summary_grid.csv's rows: one per arm x metric x grid."""
    return [
        {
            "experiment": t.experiment,
            "profile": t.profile,
            "axis": t.axis,
            "metric": t.key.column,
            "x": t.scale,
            "values": " ".join(f"{v:g}" for v in t.values),
            "differences": " ".join(f"{d:.6g}" for d in t.differences),
            "interaction": t.slope,
            "interaction_ci_low": t.ci95[0],
            "interaction_ci_high": t.ci95[1],
            "interaction_p": t.p,
            "interaction_p_holm": t.p_holm,
        }
        for t in found
    ]


def format_trends(found: list[Trend]) -> str:
    """The printed table: per arm x metric, the differences at each axis value and the interaction."""
    if not found:
        return ""
    lines = ["interaction with the grid axis (arm - baseline at each value; change per unit of x, 95% CI, Holm p):"]
    for t in found:
        x = f"log10 {t.axis}" if t.scale == "log10" else t.axis
        diffs = ", ".join(f"{v:g}: {signed(d)}" for v, d in zip(t.values, t.differences, strict=True))
        lines.append(
            f"  {t.profile:<8} {t.experiment:<15} {t.key.column:<34} [{diffs}]  per {x}: {signed(t.slope)} "
            f"[{signed(t.ci95[0])}, {signed(t.ci95[1])}], p_holm {number(t.p_holm)}"
        )
    return "\n".join(lines)


def fid_axis(ax: Any, grid: Grid) -> None:
    """FID on a log scale when it spans a factor of 10 (a collapse beside a learned run), with the collapse line
    (COLLAPSE_FRACTION x the runs' median fid_init) where the runs have fid_init."""
    fids = [r.fid for members in grid.runs.values() for _, r in members if r.fid is not None and r.fid > 0]
    if fids and max(fids) / min(fids) >= 10:
        ax.set_yscale("log")
    else:
        ax.ticklabel_format(axis="y", style="plain", useOffset=False)
    inits = [r.fid_init for members in grid.runs.values() for _, r in members if r.fid_init is not None]
    if inits:
        line = COLLAPSE_FRACTION * float(np.median(inits))
        ax.axhline(line, color="0.5", linestyle=":", linewidth=1, label=f"collapse ({COLLAPSE_RULE})")


def plot_grids(grids: list[Grid], metrics: list[MetricKey], path: Path) -> bool:
    """summary_grid.png: per grid, one panel per metric that varies: each arm's median against the axis, its
    seeds as dots (x on a log scale where the values span a factor of 10). False when there is no grid."""
    if not grids:
        return False
    from matplotlib.figure import Figure

    panels = [
        (grid, key)
        for grid in grids
        for key in metrics
        if len({key.value(r) for members in grid.runs.values() for _, r in members} - {None}) > 1
    ]
    if not panels:
        return False
    columns = min(4, len(panels))
    rows = math.ceil(len(panels) / columns)
    fig = Figure(figsize=(4.6 * columns, 3.6 * rows), dpi=100, layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, columns, squeeze=False)).ravel()
    for ax, (grid, key) in zip(axes, panels, strict=False):
        for index, (name, members) in enumerate(sorted(grid.runs.items(), key=lambda kv: kv[0] != BASELINE)):
            color = f"C{index % 10}"
            xs = sorted({x for x, _ in members})
            points = {x: [v for xx, r in members if xx == x and (v := key.value(r)) is not None] for x in xs}
            xs = [x for x in xs if points[x]]
            medians = [float(np.median(points[x])) for x in xs]
            ax.plot(xs, medians, color=color, marker="o", label=f"{name} (median; dots: seeds)", linewidth=1.2)
            for x in xs:
                ax.scatter([x] * len(points[x]), points[x], color=color, s=9, alpha=0.45, linewidths=0)
        if _scale(grid.values) == "log10":
            ax.set_xscale("log")
        if key.ood_set is None:
            fid_axis(ax, grid)
            ax.set_ylabel("FID; lower is better", fontsize=8)
        else:
            ax.set_ylim(-0.02, 1.02)
            ax.axhline(0.5, color="0.5", linestyle=":", linewidth=0.8, label="chance (0.5)")
            ax.set_ylabel("AUROC; higher is better", fontsize=8)
        ax.set_xlabel(grid.axis, fontsize=8)
        ax.set_title(f"{key.title} ({grid.profile})", fontsize=9)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    # one legend for every panel, above them: no panel's data under it
    handles, labels = [], []
    for ax in axes[: len(panels)]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    fig.legend(handles, labels, loc="outside upper center", ncols=min(4, len(labels)), fontsize=8)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    write_output(path, buffer.getvalue())
    return True
