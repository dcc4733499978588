"""summary.png: per profile, the levels (each arm's values over seeds) and a forest plot per tested metric (each
arm's difference to the baseline with its 95% Welch interval and its Holm verdict); saturated metrics in a note."""

from pathlib import Path
from typing import Any

import numpy as np

from runner.report.files import write_output
from runner.report.stats import BASELINE, FID, SCORES, Group, MetricKey, distinct
from runner.report.verdicts import BETTER, SATURATED, WORSE, Comparison

DPI = 100
PANEL_INCHES = (3.6, 3.4)  # one panel: 360 x 340 pixels
MAX_COLUMNS = 4  # panels per figure row: a profile with more tested metrics wraps onto more rows
VERDICT_COLORS = {BETTER: "tab:green", WORSE: "tab:red"}
NEUTRAL = "0.35"


def _save(fig: Any, path: Path) -> None:
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    write_output(path, buffer.getvalue())


def _plain_axis(axis: Any) -> None:
    """No offset or scientific notation: a tick reads as the value it is (FID 2073, not 0.4 + 2e3)."""
    from matplotlib.ticker import ScalarFormatter

    formatter = ScalarFormatter(useOffset=False)
    formatter.set_scientific(False)
    axis.set_major_formatter(formatter)


def _levels_fid(ax: Any, groups: list[Group]) -> None:
    features = distinct(r.fid_features for g in groups for r in g.runs) or "?"
    for i, g in enumerate(groups):
        stat = g.stat(FID)
        if not stat.n:
            continue
        ax.plot(np.full(stat.n, i), stat.values, ".", color="C0", alpha=0.45, markersize=5)
        ax.errorbar(i, stat.mean, yerr=stat.std or 0.0, fmt="o", color="C0", capsize=4)
        crosses = [r.fid for r in g.runs if r.collapsed and r.fid is not None]
        ax.plot(np.full(len(crosses), i), crosses, "x", color="red", markersize=8)
    values = [v for g in groups for v in g.stat(FID).values]
    if values and min(values) > 0 and max(values) / min(values) > 5:
        ax.set_yscale("log")
    _plain_axis(ax.yaxis)
    ax.set_title(f"FID ({features}) per seed, mean ± std; lower is better", fontsize=8)
    _arm_ticks(ax, groups)


def _levels_auroc(ax: Any, groups: list[Group], sets: list[str]) -> None:
    for j, (name, score) in enumerate((name, score) for name in sets for score in SCORES):
        key = MetricKey(name, score)
        offset = (j - (2 * len(sets) - 1) / 2) * 0.12
        for i, g in enumerate(groups):
            stat = g.stat(key)
            if stat.n:
                ax.plot(np.full(stat.n, i + offset), stat.values, ".", color=f"C{j}", alpha=0.45, markersize=4)
                ax.plot(i + offset, stat.mean, "o", color=f"C{j}", label=f"{name} {score}" if i == 0 else None)
    ax.set_ylim(0.0, 1.02)
    ax.axhline(0.5, color="0.6", linewidth=0.8, linestyle=":")
    _plain_axis(ax.yaxis)
    ax.set_title("AUROC per seed (dots) and mean; 0.5 = chance", fontsize=8)
    ax.legend(fontsize=6, loc="lower left")
    _arm_ticks(ax, groups)


def _arm_ticks(ax: Any, groups: list[Group]) -> None:
    ax.set_xticks(range(len(groups)), [g.experiment for g in groups], rotation=30, ha="right", fontsize=7)
    ax.set_xlim(-0.6, len(groups) - 0.4)
    ax.grid(axis="y", alpha=0.3)


def _forest(ax: Any, groups: list[Group], key: MetricKey, comparisons: dict[tuple, Comparison]) -> None:
    base = next(g for g in groups if g.experiment == BASELINE)
    arms = [g for g in groups if g is not base and (g.experiment, g.profile, key) in comparisons]
    arms = [g for g in arms if comparisons[(g.experiment, g.profile, key)].n]  # not an arm without the metric
    base_mean = base.stat(key).mean
    for row, g in enumerate(arms):
        c = comparisons[(g.experiment, g.profile, key)]
        color = VERDICT_COLORS.get(c.verdict, NEUTRAL)
        seeds = np.asarray(g.stat(key).values) - (base_mean or 0.0)
        ax.plot(seeds, np.full(len(seeds), row) + 0.18, ".", color=color, alpha=0.4, markersize=4)
        if c.ci95 is not None:
            ax.plot(c.ci95, [row, row], "-", color=color, linewidth=2)
        if c.diff is not None:
            ax.plot(c.diff, row, "D" if c.verdict in VERDICT_COLORS else "o", color=color, markersize=6)
    ax.axvline(0.0, color="black", linewidth=0.8)
    labels = [f"{g.experiment} (n={comparisons[(g.experiment, g.profile, key)].n})" for g in arms]
    ax.set_yticks(range(len(arms)), labels, fontsize=7)
    ax.set_ylim(len(arms) - 0.5, -0.7)
    for row, g in enumerate(arms):
        c = comparisons[(g.experiment, g.profile, key)]
        text = c.verdict if c.p_holm is None else f"{c.verdict} (p_holm {c.p_holm:.2g})"
        ax.annotate(
            text,
            (0.99, row - 0.22),
            xycoords=("axes fraction", "data"),
            fontsize=6,
            ha="right",
            va="bottom",
            color=VERDICT_COLORS.get(c.verdict, NEUTRAL),
        )
    if key.ood_set is not None:
        reach = max([0.05] + [abs(v) for c in comparisons.values() if c.key == key for v in (c.ci95 or ())])
        ax.set_xlim(-min(1.0, 1.15 * reach), min(1.0, 1.15 * reach))
    _plain_axis(ax.xaxis)
    better = "lower" if key == FID else "higher"
    ax.set_title(f"{key.column}\narm - baseline (baseline n={base.stat(key).n}); {better} is better", fontsize=8)
    ax.grid(axis="x", alpha=0.3)


def _layout(rows: list[tuple[str, list[Group], list[MetricKey], list[str]]]) -> tuple[int, list[int]]:
    """Columns of the figure and the figure rows each profile takes: its panels wrap after MAX_COLUMNS."""
    panels = [2 + len(tested) for _, _, tested, _ in rows]
    ncols = min(MAX_COLUMNS, max(panels))
    return ncols, [-(-n // ncols) for n in panels]


def plot_forest(groups: list[Group], metrics: list[MetricKey], comparisons: list[Comparison], path: Path) -> None:
    """summary.png: per profile, FID levels, AUROC levels, then a forest panel per tested metric (FID and the
    interpolation set first), wrapped after MAX_COLUMNS panels; saturated metrics are named in one note above."""
    from matplotlib.figure import Figure

    by_key = {(c.experiment, c.profile, c.key): c for c in comparisons if c.verdict != SATURATED}
    profiles = sorted({g.profile for g in groups})
    rows = []
    for profile in profiles:
        members = [g for g in groups if g.profile == profile]
        tested = [k for k in metrics if any(key[1] == profile and key[2] == k for key in by_key)]
        tested.sort(key=lambda k: (k != FID, k.ood_set != "interpolation", k.column))
        sets = sorted({k.ood_set for k in tested if k.ood_set})
        rows.append((profile, members, tested, sets))
    ncols, heights = _layout(rows)
    size = (PANEL_INCHES[0] * ncols, PANEL_INCHES[1] * sum(heights) + 0.5)
    fig = Figure(figsize=size, dpi=DPI, layout="constrained")
    axes = fig.subplots(sum(heights), ncols, squeeze=False)
    first = 0
    for (profile, members, tested, sets), height in zip(rows, heights, strict=True):
        panels = list(axes[first : first + height].flat)
        first += height
        _levels_fid(panels[0], members)
        panels[0].set_ylabel(profile, fontsize=9)
        if sets:
            _levels_auroc(panels[1], members, sets)
        else:
            panels[1].set_axis_off()
        for ax, key in zip(panels[2:], tested, strict=False):
            _forest(ax, members, key, by_key)
        for ax in panels[2 + len(tested) :]:
            ax.set_axis_off()
    saturated = sorted({f"{c.key.column} ({c.profile})" for c in comparisons if c.verdict == SATURATED})
    note = "Saturated, every run of the arm and the baseline at one value (not tested): " + ", ".join(saturated)
    title = (
        "levels: dots are seeds, red x collapsed. Differences: mean and 95% Welch interval per arm, dots its seeds; "
        "a diamond is a Holm-adjusted verdict at 5% (green better, red worse)"
    )
    fig.suptitle(title + ("\n" + note if saturated else ""), fontsize=8)
    _save(fig, path)
