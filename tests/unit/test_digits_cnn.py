"""The shipped digits-cnn FID feature network: accuracy, feature shape, determinism, input checks."""

import pytest
import torch

from runner.data import load_digits, to_unit_float
from runner.metrics.digits_cnn import FEATURE_DIM, WEIGHTS_FILE, digits_split_labels, load_digits_cnn


@pytest.fixture(scope="module")
def net():
    return load_digits_cnn()


def test_weights_shipped_small_float32():
    assert WEIGHTS_FILE.is_file()
    assert WEIGHTS_FILE.stat().st_size < 1_000_000
    state = torch.load(WEIGHTS_FILE, map_location="cpu", weights_only=True)
    assert all(v.dtype == torch.float32 for v in state.values())


def test_labels_match_split_sizes(digits):
    train_labels, test_labels = digits_split_labels()
    assert len(train_labels) == len(digits.train) == 1437
    assert len(test_labels) == len(digits.test) == 360
    assert torch.bincount(test_labels).min() >= 35


def test_test_split_accuracy(digits, net):
    _, test_labels = digits_split_labels()
    with torch.no_grad():
        predictions = net(to_unit_float(digits.test)).argmax(dim=1)
    assert (predictions == test_labels).float().mean().item() >= 0.95


def test_loaded_net_is_frozen_eval(net):
    assert not net.training
    assert not any(p.requires_grad for p in net.parameters())


def test_features_finite_shape(digits, net):
    features = net.features(to_unit_float(digits.test[:50]))
    assert features.shape == (50, FEATURE_DIM)
    assert torch.isfinite(features).all()


def test_loading_twice_is_deterministic(digits):
    x = to_unit_float(digits.test[:64])
    first = load_digits_cnn().features(x)
    second = load_digits_cnn().features(x)
    assert torch.equal(first, second)


@pytest.mark.parametrize("shape", [(2, 3, 32, 32), (2, 1, 16, 16), (3, 16, 16), (2, 3, 16, 8)])
def test_wrong_input_shape_raises(net, shape):
    with pytest.raises(ValueError, match="3 x 16 x 16"):
        net.features(torch.rand(shape))
    with pytest.raises(ValueError):
        net(torch.rand(shape))


def test_fid_features_of_larger_digits_are_those_of_the_same_images_resized_to_16(digits, net):
    from torch.nn import functional as F

    from runner.metrics.fid import load_feature_extractor

    large = to_unit_float(load_digits(32).test[:40])
    extractor = load_feature_extractor("digits-cnn", torch.device("cpu"))
    resized = F.interpolate(large, size=(16, 16), mode="bilinear", antialias=True, align_corners=False)
    assert torch.allclose(torch.from_numpy(extractor(large)).float(), net.features(resized), atol=1e-6)
    native = net.features(to_unit_float(digits.test[:40]))
    assert torch.nn.functional.cosine_similarity(native, net.features(resized)).min() > 0.9  # still the same digits
