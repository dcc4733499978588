"""FID (pytorch-fid, closed forms, statistics, feature networks, cached reference statistics) and AUROC."""

import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from pytorch_fid.fid_score import calculate_frechet_distance
from sklearn.metrics import roc_auc_score

from runner.data import load_digits, to_unit_float, uniform_noise
from runner.errors import UserError
from runner.metrics.fid import (
    FeatureExtractor,
    FeaturesUnavailable,
    frechet_distance,
    load_feature_extractor,
    reference_statistics,
    statistics,
)
from runner.metrics.inception import weights_path
from runner.metrics.ood import auroc
from runner.run.inputs import fetch_inception_weights

# pytorch-fid passes scipy's deprecated `disp` to sqrtm; the digits-cnn features have a singular covariance
pytestmark = [
    pytest.mark.filterwarnings("ignore:The `disp` argument:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning"),
]


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    """Every test caches under its own tmp dir, never in the user's ~/.cache."""
    monkeypatch.setenv("CLEL_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def random_spd(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.standard_normal((d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def hand_frechet(mu1, s1, mu2, s2) -> float:
    """||mu1 - mu2||^2 + tr S1 + tr S2 - 2 tr (S1^1/2 S2 S1^1/2)^1/2, through symmetric eigendecompositions."""
    w, v = np.linalg.eigh(s1)
    root1 = v @ np.diag(np.sqrt(w)) @ v.T
    inner = np.linalg.eigvalsh(root1 @ s2 @ root1)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.sum(np.sqrt(np.clip(inner, 0, None))))


# --- Frechet distance and statistics -----------------------------------------------------------


@pytest.mark.parametrize("d,seed", [(2, 0), (6, 1), (20, 2)])
def test_frechet_distance_equals_pytorch_fid_and_hand_formula(d, seed):
    rng = np.random.default_rng(seed)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    s1, s2 = random_spd(rng, d), random_spd(rng, d)
    got = frechet_distance(mu1, s1, mu2, s2)
    assert isinstance(got, float)
    assert got == pytest.approx(float(calculate_frechet_distance(mu1, s1, mu2, s2)), rel=1e-12)
    assert got == pytest.approx(hand_frechet(mu1, s1, mu2, s2), rel=1e-6)
    assert got == pytest.approx(frechet_distance(mu2, s2, mu1, s1), rel=1e-6)  # symmetric
    assert got > 0


def test_frechet_distance_diagonal_closed_form():
    rng = np.random.default_rng(3)
    mu1, mu2 = rng.standard_normal(5), rng.standard_normal(5)
    v1, v2 = rng.uniform(0.1, 3.0, 5), rng.uniform(0.1, 3.0, 5)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(v1 + v2 - 2 * np.sqrt(v1 * v2))
    assert frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected, rel=1e-9)
    # a hand-sized case: mu differ by (3, 4), variances (1, 4) vs (4, 9): 25 + (1 + 4 - 4) + (4 + 9 - 12) = 27
    assert frechet_distance(
        np.zeros(2), np.diag([1.0, 4.0]), np.array([3.0, 4.0]), np.diag([4.0, 9.0])
    ) == pytest.approx(27.0, rel=1e-9)


def test_frechet_distance_identical_and_shifted():
    rng = np.random.default_rng(4)
    mu, s = rng.standard_normal(8), random_spd(rng, 8)
    assert abs(frechet_distance(mu, s, mu, s)) < 1e-6
    shift = rng.standard_normal(8)
    assert frechet_distance(mu, s, mu + shift, s) == pytest.approx(float(shift @ shift), rel=1e-6, abs=1e-6)


def test_statistics_equal_numpy_mean_and_cov():
    features = np.random.default_rng(5).standard_normal((50, 7)).astype(np.float32) * 3 + 1
    mu, sigma = statistics(features)
    assert mu.shape == (7,) and sigma.shape == (7, 7)
    assert mu.dtype == np.float64 and sigma.dtype == np.float64
    np.testing.assert_allclose(mu, features.astype(np.float64).mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(sigma, np.cov(features.astype(np.float64), rowvar=False), rtol=1e-12)
    # by hand: unbiased covariance over the rows
    centred = features.astype(np.float64) - mu
    np.testing.assert_allclose(sigma, centred.T @ centred / 49, rtol=1e-10)


# --- AUROC -------------------------------------------------------------------------------------


def mann_whitney(in_scores, out_scores) -> float:
    """Fraction of (in, out) pairs with in > out, ties counting one half."""
    wins = 0.0
    for a in in_scores:
        for b in out_scores:
            wins += 1.0 if a > b else 0.5 if a == b else 0.0
    return wins / (len(in_scores) * len(out_scores))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auroc_equals_sklearn_and_mann_whitney_with_ties(seed):
    rng = np.random.default_rng(seed)
    in_scores = rng.integers(0, 6, 17).astype(float)  # few distinct values: many ties
    out_scores = rng.integers(-2, 4, 11).astype(float)
    got = auroc(in_scores, out_scores)
    assert isinstance(got, float)
    labels = np.r_[np.ones(17), np.zeros(11)]
    assert got == pytest.approx(roc_auc_score(labels, np.r_[in_scores, out_scores]), abs=1e-12)
    assert got == pytest.approx(mann_whitney(in_scores, out_scores), abs=1e-12)


def test_auroc_hand_cases():
    assert auroc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert auroc(np.array([1.0, 2.0]), np.array([3.0, 4.0])) == 0.0
    assert auroc(np.array([1.0, 1.0]), np.array([1.0])) == 0.5
    # pairs (in, out): (2,1) win, (2,2) tie, (2,3) loss, (3,1) win, (3,2) win, (3,3) tie -> 4 / 6
    assert auroc(np.array([2.0, 3.0]), np.array([1.0, 2.0, 3.0])) == pytest.approx(4 / 6)
    # higher score = in-distribution: the order of arguments matters
    assert auroc(np.array([0.9, 0.8, 0.1]), np.array([0.2, 0.3])) == pytest.approx(4 / 6)


# --- feature networks --------------------------------------------------------------------------


def test_inception_with_nonexistent_weights_path_is_a_user_error(tmp_path):
    missing = str(tmp_path / "pt_inception.pth")
    with pytest.raises(UserError, match="no such file") as info:
        fetch_inception_weights(missing)
    assert missing in str(info.value)


def test_inception_weights_with_another_digest_are_refused_before_loading(tmp_path):
    wrong = tmp_path / "not_inception.pt"
    torch.save({"conv.weight": torch.zeros(2)}, wrong)
    with pytest.raises(UserError, match="is not pytorch-fid's FID weights"):
        fetch_inception_weights(str(wrong))
    assert not weights_path().exists()  # nothing was installed


def test_inception_without_network_is_unavailable(monkeypatch):
    import torch.hub

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(FeaturesUnavailable, match="could not be downloaded"):
        fetch_inception_weights("")
    assert not list(weights_path().parent.glob("*"))  # no partial download left behind


class CountingNetwork:
    """A fake feature network: the first 4 pixels as features; counts its calls."""

    def __init__(self):
        self.calls = 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return x.flatten(1)[:, :4] * 2 + 1


def test_feature_extractor_batches_and_returns_float64():
    net = CountingNetwork()
    extractor = FeatureExtractor("fake", net, torch.device("cpu"))
    images = torch.rand(10, 3, 2, 2)
    features = extractor(images, batch_size=4)
    assert net.calls == 3
    assert features.dtype == np.float64 and features.shape == (10, 4)
    np.testing.assert_allclose(features, (images.flatten(1)[:, :4] * 2 + 1).double().numpy(), rtol=1e-7)


def test_reference_statistics_cached(cache):
    net = CountingNetwork()
    extractor = FeatureExtractor("fake", net, torch.device("cpu"))
    images = torch.rand(30, 3, 2, 2, generator=torch.Generator().manual_seed(0))
    mu, sigma = reference_statistics("digits-train", images, extractor, batch_size=100)
    assert net.calls == 1
    expected_mu, expected_sigma = statistics((images.flatten(1)[:, :4] * 2 + 1).double().numpy())
    np.testing.assert_allclose(mu, expected_mu, rtol=1e-7)
    np.testing.assert_allclose(sigma, expected_sigma, rtol=1e-6)
    files = list((cache / "fid_stats").iterdir())
    assert len(files) == 1 and files[0].name.startswith("digits-train-fake-") and files[0].suffix == ".npz"

    mu2, sigma2 = reference_statistics("digits-train", images.clone(), extractor, batch_size=100)
    assert net.calls == 1  # read from the file, not recomputed
    np.testing.assert_array_equal(mu2, mu)
    np.testing.assert_array_equal(sigma2, sigma)

    # the file is what is read: overwrite it and the cached values come back
    np.savez(files[0], mu=mu + 1, sigma=sigma)
    np.testing.assert_array_equal(reference_statistics("digits-train", images, extractor)[0], mu + 1)
    # a cache file of another form (here: a covariance that does not fit the mean) is recomputed, not used
    np.savez(files[0], mu=mu, sigma=sigma[:2, :2])
    np.testing.assert_array_equal(reference_statistics("digits-train", images, extractor)[1], sigma)
    assert net.calls == 2
    net.calls = 1

    changed = images.clone()
    changed[0, 0, 0, 0] += 0.5
    mu3, _ = reference_statistics("digits-train", changed, extractor)
    assert net.calls == 2  # a changed image set is a new key
    assert not np.allclose(mu3, mu)
    reference_statistics("digits-test", images, extractor)
    assert net.calls == 3  # so is another split name
    assert len(list((cache / "fid_stats").glob("*.npz"))) == 3
    assert not list((cache / "fid_stats").glob("*.tmp*"))


def test_digits_cnn_fid_sanity_with_real_numbers(cache):
    digits = load_digits(16)
    extractor = load_feature_extractor("digits-cnn", torch.device("cpu"))
    assert extractor.name == "digits-cnn"
    train = reference_statistics("digits-train", to_unit_float(digits.train), extractor)
    np.testing.assert_allclose(train[0], statistics(extractor(to_unit_float(digits.train)))[0], rtol=1e-10)

    def fid_to_train(images: torch.Tensor) -> float:
        return frechet_distance(*statistics(extractor(to_unit_float(images))), *train)

    test = fid_to_train(digits.test)
    noise = fid_to_train(uniform_noise(len(digits.test), 16))
    # measured: test 8.9, uniform noise 2093 (digit interpolations: 342)
    assert 0 < test < 30
    assert noise > 500
    assert test < 0.02 * noise
