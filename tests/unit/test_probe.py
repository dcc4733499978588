"""The encoder's health measures (runner.metrics.probe, runner.result's collapse rule, the chance levels): against
sklearn and numpy computed another way, and against hand-derived values."""

import math

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from runner.data import load_digits
from runner.metrics import probe
from runner.metrics.encoder_health import chance_loss, pixel_probe
from runner.metrics.probe import linear_probe, mean_pairwise_cosine
from runner.result import ENCODER_CHANCE_FRACTION, encoder_text, is_encoder_collapsed
from tests.support import tiny_cfg


def fixed_features(seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Three classes in 5 dimensions with shifted means and unequal scales, 90 training and 60 test points."""
    rng = np.random.default_rng(seed)
    scales = np.array([1.0, 10.0, 0.1, 100.0, 1.0])

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = np.arange(n) % 3
        centres = np.eye(3, 5)[labels] * 1.2
        return (centres + rng.normal(size=(n, 5))) * scales + 50, labels

    return (*draw(90), *draw(60))


def test_the_probe_is_a_logistic_regression_on_features_standardised_with_the_training_split():
    train_x, train_y, test_x, test_y = fixed_features()
    mean, std = train_x.mean(0), train_x.std(0)  # population std: StandardScaler's
    reference = LogisticRegression(max_iter=5000, tol=1e-10).fit((train_x - mean) / std, train_y)
    expected = float((reference.predict((test_x - mean) / std) == test_y).mean())
    assert 0.5 < expected < 1.0  # neither trivial nor perfect: the check can fail
    assert linear_probe(train_x, train_y, test_x, test_y) == expected


def test_the_probe_uses_at_most_its_cap_of_images_from_each_split(monkeypatch):
    train_x, train_y, test_x, test_y = fixed_features()
    monkeypatch.setattr(probe, "PROBE_MAX_IMAGES", 30)
    capped = linear_probe(train_x, train_y, test_x, test_y)
    assert capped == linear_probe(train_x[:30], train_y[:30], test_x[:30], test_y[:30])
    assert capped * 30 == round(capped * 30)  # an accuracy over 30 test images


def test_a_probe_on_features_without_information_scores_the_majority_class():
    train_y = np.array([0] * 30 + [1] * 10)
    test_y = np.array([0] * 12 + [1] * 8)
    constant = np.ones((40, 3))
    assert linear_probe(constant, train_y, np.ones((20, 3)), test_y) == 12 / 20


def test_the_probe_on_the_digits_pixels_is_345_of_360():
    """The known value of the protocol on raw pixels (16 x 16, 3 channels, the runner's stratified split)."""
    assert pixel_probe(load_digits(16)) == 345 / 360


def test_mean_pairwise_cosine_is_the_mean_over_distinct_pairs():
    z = np.random.default_rng(0).normal(size=(7, 4)) + np.array([2.0, 0, 0, 0])
    unit = z / np.linalg.norm(z, axis=1, keepdims=True)
    pairs = [unit[i] @ unit[j] for i in range(7) for j in range(7) if i != j]
    assert mean_pairwise_cosine(z) == pytest.approx(np.mean(pairs), abs=1e-12)
    assert mean_pairwise_cosine(np.tile([[0.0, 3.0]], (5, 1))) == pytest.approx(1.0)
    assert mean_pairwise_cosine(np.array([[1.0, 0], [-1.0, 0]])) == pytest.approx(-1.0)


@pytest.mark.parametrize(
    ("experiment", "overrides", "expected"),
    [
        ("baseline", {}, math.log(2 * 16 - 1 + 16)),  # 2B - 1 other views and B generated negatives
        ("no_generated_negatives", {}, math.log(2 * 16 - 1)),
        ("moco", {"crl.moco.queue_size": 100}, math.log(1 + 100 + 16)),
        ("moco", {"crl.moco.queue_size": 100, "crl.use_generated_negatives": False}, math.log(101)),
        ("mae", {"crl.mae.patch_size": 2}, 11 / 12),  # 2 x 2 x 3 values per patch
        ("mae", {"crl.mae.patch_size": 4}, 47 / 48),
        ("byol", {}, None),  # a collapsed BYOL reaches 0: no chance level
        ("plain_ebm", {}, None),
    ],
)
def test_chance_levels(experiment, overrides, expected):
    got = chance_loss(tiny_cfg(experiment, overrides=overrides))
    assert got == (None if expected is None else pytest.approx(expected))


@pytest.mark.parametrize(
    ("probe_z", "untrained", "loss", "chance", "collapsed"),
    [
        (0.95, 0.80, 3.0, 5.25, False),  # learned: above the untrained probe, loss well below chance
        (0.79, 0.80, 3.0, 5.25, True),  # the probe fell below the untrained encoder's
        (0.80, 0.80, 3.0, 5.25, True),  # not above it
        (0.95, 0.80, 5.25 * ENCODER_CHANCE_FRACTION, 5.25, True),  # at the margin of chance
        (0.95, 0.80, 5.25 * ENCODER_CHANCE_FRACTION - 1e-9, 5.25, False),
        (0.95, 0.80, 0.01, None, False),  # BYOL: the probe alone decides
        (0.70, 0.80, 0.01, None, True),
        (None, None, 5.3, 5.25, True),  # no labels: the loss alone decides
        (None, None, None, None, None),  # nothing to judge
        (0.95, 0.80, float("nan"), 5.25, False),
    ],
)
def test_the_encoder_collapse_rule(probe_z, untrained, loss, chance, collapsed):
    assert is_encoder_collapsed(probe_z, untrained, loss, chance) is collapsed


def test_the_result_line_names_a_collapsed_encoder_and_its_numbers():
    health = {
        "probe_z": 0.739,
        "untrained_probe_z": 0.794,
        "mean_cos_z": 0.995,
        "final_loss": 5.254,
        "chance_loss": 5.2523,
        "collapsed": True,
    }
    text = encoder_text(health)
    assert text.startswith("encoder: probe z 0.739 (untrained 0.794), cos z 0.995, loss 5.25 (chance 5.25)")
    assert "ENCODER COLLAPSED" in text
    learned = encoder_text(health | {"probe_z": 0.95, "final_loss": 3.1, "collapsed": False, "chance_loss": None})
    assert learned == "encoder: probe z 0.950 (untrained 0.794), cos z 0.995, loss 3.1"
