"""samples_grid.png: every run's samples.png in one image; samples_rows.png: a typical and the worst seed per arm,
one column per arm."""

import io
from pathlib import Path
from typing import Any

import numpy as np

from runner.layout import SAMPLES_FILE
from runner.report.files import write_output
from runner.report.stats import Group
from runner.store import Store

DPI = 100
CELL_INCHES = (2.6, 2.9)  # one run's samples in samples_grid.png: 260 x 290 pixels


def _save_figure(fig: Any, path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    write_output(path, buffer.getvalue())


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


def typical_and_worst(group: Group) -> list[tuple[str, Any]]:
    """(label, run) of the group's seed with the median FID (the lower of the two middle ones) and of its worst
    seed (highest FID); one entry when they are the same run."""
    runs = sorted((r for r in group.runs if r.fid is not None), key=lambda r: r.fid)
    if not runs:
        return []
    typical, worst = runs[(len(runs) - 1) // 2], runs[-1]
    chosen = [("typical (nearest the median FID)", typical)]
    return chosen if worst is typical else [*chosen, ("worst (highest FID)", worst)]


def plot_sample_rows(store: Store, groups: list[Group], path: Path) -> int:
    """samples_rows.png: a column per arm of the first profile with a baseline, the samples of its typical seed
    above those of its worst, titled with the seed and its FID; returns the images placed."""
    from matplotlib.figure import Figure

    profile = next((g.profile for g in groups if g.experiment == "baseline"), groups[0].profile if groups else None)
    members = [g for g in groups if g.profile == profile]
    if not members:
        return 0
    fig = Figure(figsize=(CELL_INCHES[0] * len(members), CELL_INCHES[1] * 2), dpi=DPI, layout="constrained")
    axes = fig.subplots(2, len(members), squeeze=False)
    placed = 0
    for column, group in zip(axes.T, members, strict=True):
        for ax in column:
            ax.set_axis_off()
        for ax, (label, r) in zip(column, typical_and_worst(group), strict=False):
            failed = " FAILED" if group.failed(r) else ""
            ax.set_title(f"{group.experiment}\n{label}: seed {r.seed}, FID {r.fid:.4g}{failed}", fontsize=7)
            image = _read_png(store, f"{r.run_id}/{SAMPLES_FILE}")
            if image is None:
                ax.text(0.5, 0.5, "no readable samples.png", ha="center", va="center", fontsize=8)
                continue
            ax.imshow(image, cmap="gray", interpolation="nearest")
            placed += 1
    if placed:
        _save_figure(fig, path)
    return placed
