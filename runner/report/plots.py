"""The figures: summary.png (mean ± std per metric against the baseline) and samples_grid.png (every run's samples)."""

import io
from pathlib import Path
from typing import Any

import numpy as np

from runner.layout import SAMPLES_FILE
from runner.report.files import write_output
from runner.report.stats import BASELINE, FID, SCORES, Group, MetricKey, Stat, distinct
from runner.store import Store

DPI = 100
PANEL_INCHES = (4.0, 3.5)  # one metric panel of summary.png: 400 x 350 pixels
CELL_INCHES = (2.6, 2.9)  # one run's samples in samples_grid.png: 260 x 290 pixels


def _save_figure(fig: Any, path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    write_output(path, buffer.getvalue())


def _panels(groups: list[Group], metrics: list[MetricKey]) -> list[tuple[str, list[MetricKey]]]:
    features = distinct(r.fid_features for g in groups for r in g.runs) or "?"
    panels = [(f"FID ({features}), lower is better", [FID])]
    for name in sorted({key.ood_set for key in metrics if key.ood_set and any(g.has(key) for g in groups)}):
        panels.append((f"AUROC vs {name}, higher is better", [MetricKey(name, score) for score in SCORES]))
    return panels


def _draw_series(ax: Any, groups: list[Group], key: MetricKey, offset: float, color: str) -> None:
    points = [(i, g.stat(key)) for i, g in enumerate(groups) if g.stat(key).n]
    if not points:
        return
    x = np.array([i for i, _ in points]) + offset
    means = [s.mean for _, s in points]
    errors = [s.std or 0.0 for _, s in points]
    ax.errorbar(x, means, yerr=errors, fmt="o", color=color, capsize=4, label=key.score or "fid")
    for xi, (_, s) in zip(x, points, strict=True):
        ax.plot(np.full(s.n, xi), s.values, ".", color=color, alpha=0.35, markersize=4)
    if key.ood_set is None:  # FID: collapsed runs (result.COLLAPSE_RULE) get a red cross over their dot
        for xi, (i, _) in zip(x, points, strict=True):
            crosses = [r.fid for r in groups[i].runs if r.collapsed and r.fid is not None]
            ax.plot(np.full(len(crosses), xi), crosses, "x", color="red", markersize=7, label=None)


def _draw_baseline(ax: Any, base: Group | None, key: MetricKey, color: str) -> None:
    stat = base.stat(key) if base else Stat(())
    if stat.mean is None:
        return
    ax.axhline(stat.mean, color=color, linestyle="--", linewidth=1)
    if stat.std:
        ax.axhspan(stat.mean - stat.std, stat.mean + stat.std, color=color, alpha=0.12, linewidth=0)


def _draw_panel(ax: Any, groups: list[Group], keys: list[MetricKey], title: str) -> None:
    base = next((g for g in groups if g.experiment == BASELINE), None)
    title += "" if base else f" (no {BASELINE} runs)"
    for i, key in enumerate(keys):
        color, offset = f"C{i}", (i - (len(keys) - 1) / 2) * 0.3
        _draw_baseline(ax, base, key, color)
        _draw_series(ax, groups, key, offset, color)
    ax.set_xticks(range(len(groups)), [g.experiment for g in groups], rotation=30, ha="right")
    ax.set_xlim(-0.6, len(groups) - 0.4)
    ax.set_title(title, fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    if len(keys) > 1:
        ax.legend(fontsize=8)


def plot_summary(groups: list[Group], metrics: list[MetricKey], path: Path) -> tuple[int, int]:
    """summary.png: a row per profile, a panel per metric group (FID, AUROC per OOD set); returns its pixel size."""
    from matplotlib.figure import Figure

    profiles = sorted({g.profile for g in groups})
    by_profile = {p: [g for g in groups if g.profile == p] for p in profiles}
    panels = {p: _panels(by_profile[p], metrics) for p in profiles}
    ncols = max(len(v) for v in panels.values())
    size = (PANEL_INCHES[0] * ncols, PANEL_INCHES[1] * len(profiles))
    fig = Figure(figsize=size, dpi=DPI, layout="constrained")
    title = "mean ± sample std over seeds (dots: seeds; red x: collapsed); dashed line and band: baseline mean ± std"
    fig.suptitle(title, fontsize=9)
    axes = fig.subplots(len(profiles), ncols, squeeze=False)
    for row, profile in enumerate(profiles):
        for col, ax in enumerate(axes[row]):
            if col < len(panels[profile]):
                title, keys = panels[profile][col]
                _draw_panel(ax, by_profile[profile], keys, f"{profile}: {title}")
            else:
                ax.set_axis_off()
    _save_figure(fig, path)
    return round(size[0] * DPI), round(size[1] * DPI)


def _read_png(store: Store, key: str) -> np.ndarray | None:
    from matplotlib.image import imread

    try:
        return imread(io.BytesIO(store.read(key)), format="png")
    except (KeyError, OSError, ValueError, SyntaxError):
        return None


def plot_samples(store: Store, groups: list[Group], path: Path) -> int:
    """samples_grid.png: each run's samples.png titled with its run id, a row per group; returns images placed."""
    from matplotlib.figure import Figure

    ncols = max(len(g.runs) for g in groups)
    fig = Figure(figsize=(CELL_INCHES[0] * ncols, CELL_INCHES[1] * len(groups)), dpi=DPI, layout="constrained")
    axes = fig.subplots(len(groups), ncols, squeeze=False)
    placed = 0
    for row, group in enumerate(groups):
        for col, ax in enumerate(axes[row]):
            ax.set_axis_off()
            if col >= len(group.runs):
                continue
            run_id = group.runs[col].run_id
            ax.set_title(run_id, fontsize=8)
            image = _read_png(store, f"{run_id}/{SAMPLES_FILE}")
            if image is None:
                ax.text(0.5, 0.5, "no readable samples.png", ha="center", va="center", fontsize=8)
                continue
            ax.imshow(image, cmap="gray", interpolation="nearest")
            placed += 1
    if placed:
        _save_figure(fig, path)
    return placed
