"""samples_grid.png: every run's samples.png in one image (summary.png is forest.py's)."""

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
