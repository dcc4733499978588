"""Failure as its own endpoint: whether a run's samples are digits, judged on the samples it stored (samples.png,
the first eval.sample_grid samples of its FID set) by runner.metrics.sample_quality (docs/STATISTICS.md).

samples.png is untrusted data from a store: it is decoded by Pillow with its decompression-bomb limit, must be an
8-bit RGB image with the layout torchvision's save_image gives a grid of square images (8 per row, 2 pixels of
padding; the run's config.json says how many), and anything else is "no judgement" for that run, never an error.
Runs of other datasets (or features) are not judged: the judge needs the digits network and the training digits.
"""

import io
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from runner.layout import CONFIG_FILE, SAMPLES_FILE
from runner.metrics.sample_quality import SampleQuality, real_radii, sample_quality
from runner.report.estimates import failure_interval
from runner.report.stats import Group
from runner.result import RunResult
from runner.store import Store

# runner.run.execute saves samples.png with save_image(samples, nrow=8): 2 pixels of padding
GRID_COLUMNS, PADDING = 8, 2
MAX_PNG_BYTES = 1 << 22


def tiles(image: np.ndarray, count: int | None = None) -> np.ndarray | None:
    """The first `count` images (default: every cell) of a save_image grid (H x W x 3 uint8) as N x 3 x S x S floats
    in [0, 1]. None when the layout does not fit."""
    if image.ndim != 3 or image.shape[2] != 3:
        return None
    height, width = image.shape[:2]
    tile = (width - PADDING) // GRID_COLUMNS - PADDING
    step = tile + PADDING
    if tile < 4 or width != GRID_COLUMNS * step + PADDING or (height - PADDING) % step:
        return None
    rows = (height - PADDING) // step
    count = rows * GRID_COLUMNS if count is None else count
    if not (rows - 1) * GRID_COLUMNS < count <= rows * GRID_COLUMNS:
        return None
    cells = [
        image[
            PADDING + row * step : PADDING + row * step + tile, PADDING + column * step : PADDING + column * step + tile
        ]
        for row in range(rows)
        for column in range(GRID_COLUMNS)
    ]
    return np.stack(cells[:count]).transpose(0, 3, 1, 2).astype(np.float32) / 255


def _sample_count(store: Store, run_id: str) -> int | None:
    """eval.sample_grid of the run's config.json, when it reads as one (else every cell of the grid)."""
    try:
        count = json.loads(store.read(f"{run_id}/{CONFIG_FILE}"))["eval"]["sample_grid"]
    except (KeyError, TypeError, ValueError):
        return None
    return count if type(count) is int and count > 0 else None


def read_samples(store: Store, run_id: str) -> np.ndarray | None:
    """A run's samples from its samples.png, or None when it is missing or not a grid of 16 x 16 RGB images."""
    from PIL import Image

    try:
        data = store.read(f"{run_id}/{SAMPLES_FILE}")
        if len(data) > MAX_PNG_BYTES:
            return None
        with Image.open(io.BytesIO(data)) as png:
            if png.format != "PNG" or png.mode != "RGB":
                return None
            image = np.asarray(png.convert("RGB"))
    except (KeyError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
    return tiles(image, _sample_count(store, run_id))


@dataclass
class SampleJudge:
    """The digits network and the training digits' features, loaded once for a summary."""

    def __post_init__(self) -> None:
        import torch

        from runner.data import load_digits, to_unit_float
        from runner.metrics.digits_cnn import load_digits_cnn

        self._torch = torch
        self.network = load_digits_cnn()
        with torch.no_grad():
            self.real = self.network.features(to_unit_float(load_digits(16).train)).double().numpy()
        self.radii = real_radii(self.real)

    def judge(self, samples: np.ndarray) -> SampleQuality:
        from runner.metrics.digits_cnn import resized_to_input

        with self._torch.no_grad():
            images = resized_to_input(self._torch.from_numpy(samples))
            features = self.network.features(images).double().numpy()
        return sample_quality(self.real, features, self.radii)


def judge_runs(store: Store, results: list[RunResult]) -> dict[str, SampleQuality]:
    """run_id -> its samples' quality, for the digits runs whose samples.png reads as a grid of 16 x 16 images."""
    digits = [r for r in results if r.fid_features == "digits-cnn"]
    if not digits:
        return {}
    judge = None
    found = {}
    for r in digits:
        samples = read_samples(store, r.run_id)
        if samples is None:
            continue
        judge = judge or SampleJudge()
        found[r.run_id] = judge.judge(samples)
    return found


def failure_cells(group: Group, base: Group | None) -> dict[str, Any]:
    """The arm's failures: how many of its runs failed, the rate with its exact interval, and Fisher's exact
    two-sided p against the baseline's failures (secondary: reported, not a verdict)."""
    judged = [r for r in group.runs if group.failed(r) is not None]
    failed = len(group.failed_seeds())
    cells: dict[str, Any] = {"failed_n": failed, "judged_n": len(judged), "judged_on_samples_n": 0}
    cells["judged_on_samples_n"] = sum(r.run_id in group.samples for r in group.runs)
    if not judged:
        return cells
    low, high = failure_interval(failed, len(judged))
    cells |= {"failure_rate": failed / len(judged), "failure_rate_lo": low, "failure_rate_hi": high}
    if base is not None and base is not group:
        base_judged = [r for r in base.runs if base.failed(r) is not None]
        if base_judged:
            base_failed = len(base.failed_seeds())
            table = [[failed, len(judged) - failed], [base_failed, len(base_judged) - base_failed]]
            cells["failure_fisher_p"] = float(stats.fisher_exact(table).pvalue)
    return cells
