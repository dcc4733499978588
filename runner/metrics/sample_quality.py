"""Whether a run's samples are digits: precision, density and coverage of the samples against the training digits
in the digits-cnn feature space (Naeem et al. 2020, "Reliable fidelity and diversity metrics for generative
models"), and the failure rule built on precision (docs/STATISTICS.md).

A real image's neighbourhood is the ball around its feature with the radius of its k-th nearest real neighbour.
precision: the fraction of samples inside at least one real ball; density: the mean number of real balls a
sample is in, over k; coverage: the fraction of real images whose ball holds at least one sample. Distances are
Euclidean, as the paper's reference code (prdc) computes them.
"""

from dataclasses import dataclass

import numpy as np
from scipy.spatial.distance import cdist

NEAREST_K = 5
# A run failed when fewer than this fraction of its samples lie on the digits' manifold. Measured on 64 images
# (tests/unit/test_sample_quality.py): test digits 0.95, uniform noise 0.02, grey noise 0.06, smooth colour blobs
# 0.08-0.13, black 0; the samples of tiny runs that learned (recognisable, imperfect digits, FID 62-76) 0.47-0.58.
FAILURE_PRECISION = 0.2
FAILURE_RULE = f"sample precision < {FAILURE_PRECISION:g}: the samples are not digits"


@dataclass(frozen=True)
class SampleQuality:
    precision: float
    density: float
    coverage: float

    @property
    def failed(self) -> bool:
        return self.precision < FAILURE_PRECISION


def real_radii(real: np.ndarray, k: int = NEAREST_K) -> np.ndarray:
    """Each real feature's distance to its k-th nearest other real feature."""
    distances = cdist(real, real)
    return np.sort(distances, axis=1)[:, k]  # column 0 is the point itself


def sample_quality(real: np.ndarray, samples: np.ndarray, radii: np.ndarray | None = None) -> SampleQuality:
    """Precision, density and coverage of `samples` against `real` (features, one row each)."""
    radii = real_radii(real) if radii is None else radii
    inside = cdist(real, samples) < radii[:, None]  # real x sample: the sample is in the real image's ball
    return SampleQuality(
        precision=float(inside.any(axis=0).mean()),
        density=float(inside.sum(axis=0).mean() / NEAREST_K),
        coverage=float(inside.any(axis=1).mean()),
    )
