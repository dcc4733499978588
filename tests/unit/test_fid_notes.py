"""A singular covariance product is a note in result.json, not a library warning (runner/metrics/fid.py): the
FID is still pytorch-fid's value, and the output stays one line per event."""

import warnings

import numpy as np
import pytest
from pytorch_fid.fid_score import calculate_frechet_distance

from runner.metrics.fid import frechet_distance


def test_a_singular_covariance_product_is_a_note_and_no_warning():
    # rank-1 covariances in 3 dimensions: S1 S2 is singular, and scipy's sqrtm says so
    v = np.array([[1.0], [2.0], [0.5]])
    sigma1, sigma2 = v @ v.T, np.diag([1.0, 0.0, 0.0])
    mu1, mu2 = np.zeros(3), np.ones(3)
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = frechet_distance(mu1, sigma1, mu2, sigma2, notes)
    assert not caught
    assert len(notes) == 1 and "singular" in notes[0] and notes[0].startswith(f"FID {value:.3f}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert value == pytest.approx(calculate_frechet_distance(mu1, sigma1, mu2, sigma2))


def test_a_well_conditioned_pair_gives_no_note():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(200, 3)), rng.normal(size=(200, 3)) + 0.5
    notes: list[str] = []
    value = frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False), notes)
    assert notes == [] and value > 0
