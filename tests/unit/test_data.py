"""runner.data: embedded digits, float conversions, OOD sets, .npz OOD files, torchvision datasets offline."""

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits as sklearn_digits
from sklearn.model_selection import train_test_split

from runner.data import (
    ImageData,
    dequantize,
    interpolations,
    load_dataset,
    load_digits,
    load_npz_images,
    ood_sets,
    to_unit_float,
    uniform_noise,
)
from runner.errors import UserError

# The shipped digits-cnn weights were trained on this split, so it must never change:
# 20 % test, stratified by class, random_state 0, indices kept in sklearn's order.
SPLIT_SEED, TEST_FRACTION = 0, 0.2


@pytest.fixture(scope="module")
def sk():
    return sklearn_digits()


def bilinear_matrix(src: int, dst: int) -> np.ndarray:
    """dst x src matrix of 1-D bilinear upsampling with half-pixel centres (align_corners=False), by hand."""
    m = np.zeros((dst, src))
    for j in range(dst):
        s = max((j + 0.5) * src / dst - 0.5, 0.0)
        i0 = int(np.floor(s))
        i1 = min(i0 + 1, src - 1)
        frac = s - i0
        m[j, i0] += 1 - frac
        m[j, i1] += frac
    return m


def reference_upsampled(sk, size: int) -> np.ndarray:
    """sklearn's 8x8 digits / 16 upsampled to size x size by hand, as uint8 in [0, 255] (N x size x size)."""
    m = bilinear_matrix(8, size)
    up = np.einsum("ab,nbc,dc->nad", m, sk.images / 16.0, m)
    return np.clip(np.round(up * 255), 0, 255)


def reference_split(sk) -> tuple[np.ndarray, np.ndarray]:
    train_idx, test_idx = train_test_split(
        np.arange(len(sk.images)), test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=sk.target
    )
    return np.sort(train_idx), np.sort(test_idx)


# --- digits ------------------------------------------------------------------------------------


def test_digits_shapes_dtype_channels(digits):
    assert digits.name == "digits"
    assert digits.train.shape == (1437, 3, 16, 16)
    assert digits.test.shape == (360, 3, 16, 16)
    assert digits.train.dtype == torch.uint8 and digits.test.dtype == torch.uint8
    assert digits.image_size == 16
    for split in (digits.train, digits.test):
        assert torch.equal(split[:, 0], split[:, 1]) and torch.equal(split[:, 0], split[:, 2])
    # sklearn's digits span 0..16, i.e. the full 0..255 range after scaling
    assert digits.train.min().item() == 0 and digits.train.max().item() == 255


def test_digits_split_is_fixed_across_calls(digits):
    again = load_digits(16)
    assert torch.equal(again.train, digits.train)
    assert torch.equal(again.test, digits.test)
    assert again.mean == digits.mean and again.std == digits.std


def test_digits_values_are_sklearn_upsampled_by_hand(digits, sk):
    reference = reference_upsampled(sk, 16)
    train_idx, test_idx = reference_split(sk)
    for split, idx in ((digits.train, train_idx), (digits.test, test_idx)):
        got = split[:, 0].numpy().astype(np.int64)
        diff = np.abs(got - reference[idx])
        # float32 vs float64 may round an exact .5 differently: at most 1 grey level, and rarely
        assert diff.max() <= 1
        assert (diff == 0).mean() > 0.999


def test_digits_corner_pixels_equal_sklearn_corners(digits, sk):
    # with half-pixel centres the four output corners sample the four input corners exactly
    train_idx, _ = reference_split(sk)
    images = sk.images[train_idx]
    for (r, c), (sr, sc) in {(0, 0): (0, 0), (0, 15): (0, 7), (15, 0): (7, 0), (15, 15): (7, 7)}.items():
        expected = np.round(images[:, sr, sc] / 16 * 255)
        np.testing.assert_array_equal(digits.train[:, 0, r, c].numpy(), expected)


def test_digits_downsampled_back_approximates_sklearn(digits, sk):
    train_idx, _ = reference_split(sk)
    back = digits.train[:, 0].double().div(255).reshape(-1, 8, 2, 8, 2).mean(dim=(2, 4)).numpy()
    original = sk.images[train_idx] / 16
    # 2x2 averaging of a bilinear x2 upsample is 0.75 x + 0.125 (neighbours) per axis: close, not equal
    assert np.abs(back - original).mean() < 0.08
    assert np.corrcoef(back.ravel(), original.ravel())[0, 1] > 0.97
    assert back.sum() == pytest.approx(original.sum(), rel=0.01)  # the smoothing keeps total intensity


def test_digits_split_is_stratified_and_partitions_the_data(digits, sk):
    train_idx, test_idx = reference_split(sk)
    assert len(np.intersect1d(train_idx, test_idx)) == 0
    assert len(train_idx) + len(test_idx) == len(sk.images)
    counts = np.bincount(sk.target, minlength=10)
    test_counts = np.bincount(sk.target[test_idx], minlength=10)
    assert np.all(np.abs(test_counts - TEST_FRACTION * counts) <= 1)
    # independent of the indices: train + test is the full upsampled set, as a multiset of images
    everything = torch.cat([digits.train[:, 0], digits.test[:, 0]]).reshape(len(sk.images), -1).numpy()
    reference = reference_upsampled(sk, 16).reshape(len(sk.images), -1)
    mismatch = np.abs(np.sort(everything, axis=0).astype(int) - np.sort(reference, axis=0))
    assert mismatch.max() <= 1


def test_digits_channel_statistics_are_the_train_splits(digits):
    x = digits.train.double().numpy() / 255
    np.testing.assert_allclose(digits.mean, x.mean(axis=(0, 2, 3)), rtol=1e-9)
    np.testing.assert_allclose(digits.std, x.std(axis=(0, 2, 3)), rtol=1e-4)
    assert digits.mean[0] == digits.mean[1] == digits.mean[2]


def test_digits_other_size_and_load_dataset(digits):
    assert load_digits(32).train.shape == (1437, 3, 32, 32)
    via_dataset = load_dataset("digits", 16)
    assert torch.equal(via_dataset.train, digits.train) and torch.equal(via_dataset.test, digits.test)


# --- float conversions -------------------------------------------------------------------------


def test_to_unit_float_bin_centres():
    v = torch.arange(256, dtype=torch.uint8)
    x = to_unit_float(v)
    assert x.dtype == torch.float32
    np.testing.assert_allclose(x.numpy(), (np.arange(256) + 0.5) / 256, rtol=0, atol=1e-7)
    assert x.min().item() == pytest.approx(0.5 / 256) and x.max().item() == pytest.approx(255.5 / 256)
    assert x.mean().item() == pytest.approx(0.5, abs=1e-7)


def test_dequantize_stays_in_bin_with_uniform_offset():
    v = torch.arange(256, dtype=torch.uint8).repeat(400)
    x = dequantize(v, torch.Generator().manual_seed(0)).double()
    offset = x * 256 - v.double()  # U(0, 1)
    assert offset.min().item() >= 0 and offset.max().item() < 1 + 1e-5
    assert offset.mean().item() == pytest.approx(0.5, abs=0.01)
    assert offset.var().item() == pytest.approx(1 / 12, abs=0.005)
    assert x.min().item() >= 0 and x.max().item() <= 1
    # mean over the dequantisation noise equals the bin centre of to_unit_float
    per_value = x.view(400, 256).mean(dim=0)
    np.testing.assert_allclose(per_value.numpy(), to_unit_float(v[:256]).double().numpy(), atol=0.002)


def test_dequantize_generator_is_deterministic():
    v = torch.randint(0, 256, (4, 3, 5, 5), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    a = dequantize(v, torch.Generator().manual_seed(7))
    b = dequantize(v, torch.Generator().manual_seed(7))
    c = dequantize(v, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


# --- OOD sets ----------------------------------------------------------------------------------


def hand_interpolation(images: np.ndarray, offset: int) -> np.ndarray:
    """Image i averaged with image i + offset for i < N - offset (the reference's pairs), halves rounded up."""
    pairs = len(images) - offset
    out = np.empty_like(images[:pairs])
    for i in range(pairs):
        a, b = images[i].astype(np.int64), images[i + offset].astype(np.int64)
        out[i] = np.floor((a + b) / 2 + 0.5)
    return out


@pytest.mark.parametrize("offset", [100, 1, 7])
def test_interpolations_equal_rounded_mean_without_wrap(digits, offset):
    got = interpolations(digits.test, offset)
    assert got.dtype == torch.uint8 and got.shape == (len(digits.test) - offset, *digits.test.shape[1:])
    expected = hand_interpolation(digits.test.numpy(), offset)
    np.testing.assert_array_equal(got.numpy(), expected)
    exact_mean = (digits.test[:-offset].double() + digits.test[offset:].double()) / 2
    assert (got.double() - exact_mean).abs().max().item() <= 0.5


def test_interpolations_default_offset_is_100(digits):
    np.testing.assert_array_equal(interpolations(digits.test).numpy(), hand_interpolation(digits.test.numpy(), 100))


def test_uniform_noise_deterministic_per_seed_and_uniform():
    a = uniform_noise(200, 16, seed=3)
    assert a.shape == (200, 3, 16, 16) and a.dtype == torch.uint8
    assert torch.equal(a, uniform_noise(200, 16, seed=3))
    assert not torch.equal(a, uniform_noise(200, 16, seed=4))
    assert torch.equal(uniform_noise(10, 8), uniform_noise(10, 8))  # the default seed is fixed too
    counts = np.bincount(a.numpy().ravel(), minlength=256)
    expected = a.numel() / 256
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 400  # 255 degrees of freedom: mean 255, sd 22.6
    assert a.min().item() == 0 and a.max().item() == 255


@pytest.fixture
def small_data():
    g = torch.Generator().manual_seed(0)
    train = torch.randint(0, 256, (20, 3, 8, 8), dtype=torch.uint8, generator=g)
    test = torch.randint(0, 256, (112, 3, 8, 8), dtype=torch.uint8, generator=g)
    return ImageData("digits", train, test, (0.5,) * 3, (0.25,) * 3)


def test_ood_sets_builtin_and_npz(small_data, tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (5, 8, 8, 1), dtype=np.uint8)
    np.savez(tmp_path / "my_faces.npz", x=x)
    sets = ood_sets(small_data, ["interpolation", "inverted", "uniform_noise"], [str(tmp_path / "my_faces.npz")])
    assert list(sets) == ["interpolation", "inverted", "uniform_noise", "my_faces"]
    test = small_data.test
    np.testing.assert_array_equal(sets["interpolation"].numpy(), hand_interpolation(test.numpy(), 100))
    np.testing.assert_array_equal(sets["inverted"].numpy(), 255 - test.numpy().astype(np.int64))
    assert sets["inverted"].dtype == torch.uint8
    assert sets["uniform_noise"].shape == test.shape and sets["uniform_noise"].dtype == torch.uint8
    assert torch.equal(sets["uniform_noise"], uniform_noise(len(test), 8))
    np.testing.assert_array_equal(sets["my_faces"].numpy(), np.repeat(x.transpose(0, 3, 1, 2), 3, axis=1))


def test_ood_sets_unknown_name(small_data):
    with pytest.raises(UserError, match="'celeba'"):
        ood_sets(small_data, ["inverted", "celeba"], [])


# --- .npz OOD files ----------------------------------------------------------------------------


def save(path: Path, **arrays) -> str:
    np.savez(path, **arrays)
    return str(path)


def test_npz_grayscale_same_size_exact(tmp_path):
    x = np.random.default_rng(1).integers(0, 256, (4, 16, 16, 1), dtype=np.uint8)
    out = load_npz_images(save(tmp_path / "g.npz", x=x), 16)
    assert out.shape == (4, 3, 16, 16) and out.dtype == torch.uint8
    for c in range(3):
        np.testing.assert_array_equal(out[:, c].numpy(), x[..., 0])


def test_npz_rgb_channel_order_exact(tmp_path):
    x = np.random.default_rng(2).integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    out = load_npz_images(save(tmp_path / "rgb.npz", x=x), 8)
    np.testing.assert_array_equal(out.numpy(), x.transpose(0, 3, 1, 2))  # out[n, c, h, w] == x[n, h, w, c]


@pytest.mark.parametrize("height,width", [(8, 8), (32, 32), (12, 20)])
def test_npz_resized_to_image_size(tmp_path, height, width):
    # per image and channel a constant value: any resize keeps it, a channel mix-up would not
    values = np.array([[10, 120, 250], [0, 77, 255]], dtype=np.uint8)
    x = np.broadcast_to(values[:, None, None, :], (2, height, width, 3)).copy()
    out = load_npz_images(save(tmp_path / "r.npz", x=x), 16)
    assert out.shape == (2, 3, 16, 16) and out.dtype == torch.uint8
    np.testing.assert_array_equal(out.numpy(), np.broadcast_to(values[:, :, None, None], (2, 3, 16, 16)))


def test_npz_upsampled_keeps_mean(tmp_path):
    x = np.random.default_rng(3).integers(0, 256, (6, 8, 8, 1), dtype=np.uint8)
    out = load_npz_images(save(tmp_path / "u.npz", x=x), 16)
    np.testing.assert_allclose(out[:, 0].double().mean(dim=(1, 2)).numpy(), x.mean(axis=(1, 2, 3)), atol=4)


def _bad_files(tmp_path: Path) -> dict[str, str]:
    rng = np.random.default_rng(0)
    good = rng.integers(0, 256, (2, 8, 8, 1), dtype=np.uint8)
    (tmp_path / "text.npz").write_text("not an archive")
    return {
        "missing": str(tmp_path / "nowhere.npz"),
        "no_x": save(tmp_path / "no_x.npz", y=good),
        "float": save(tmp_path / "float.npz", x=good.astype(np.float32)),
        "ndim3": save(tmp_path / "ndim3.npz", x=good[..., 0]),
        "ndim5": save(tmp_path / "ndim5.npz", x=good[None]),
        "four_channels": save(tmp_path / "c4.npz", x=np.repeat(good, 4, axis=-1)),
        "two_channels": save(tmp_path / "c2.npz", x=np.repeat(good, 2, axis=-1)),
        "empty": save(tmp_path / "empty.npz", x=good[:0]),
        "object": save(tmp_path / "object.npz", x=np.array([None, 1], dtype=object)),
        "text": str(tmp_path / "text.npz"),
    }


@pytest.mark.parametrize(
    "case",
    ["missing", "no_x", "float", "ndim3", "ndim5", "four_channels", "two_channels", "empty", "object", "text"],
)
def test_npz_bad_input_is_user_error_naming_file(tmp_path, case):
    path = _bad_files(tmp_path)[case]
    with pytest.raises(UserError) as info:
        load_npz_images(path, 16)
    message = str(info.value)
    assert path in message
    assert "\n" not in message


def test_npz_given_a_npy_file_is_user_error(tmp_path):
    path = tmp_path / "images.npy"
    np.save(path, np.zeros((2, 8, 8, 1), dtype=np.uint8))
    with pytest.raises(UserError, match=str(path)):
        load_npz_images(str(path), 16)


def test_npz_zero_height_is_user_error(tmp_path):
    path = save(tmp_path / "flat.npz", x=np.zeros((2, 0, 8, 1), dtype=np.uint8))
    with pytest.raises(UserError, match=path):
        load_npz_images(path, 16)


# --- torchvision datasets: never a download unless asked ---------------------------------------


@pytest.fixture
def no_downloads(monkeypatch):
    """Any torchvision download attempt fails the test (AssertionError is not caught as RuntimeError)."""
    import torchvision.datasets.cifar as cifar
    import torchvision.datasets.svhn as svhn

    def forbidden(*args, **kwargs):
        raise AssertionError(f"download attempted: {args}")

    monkeypatch.setattr(cifar, "download_and_extract_archive", forbidden)
    monkeypatch.setattr(svhn, "download_url", forbidden)


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "svhn"])
def test_missing_dataset_without_download_is_user_error(tmp_path, no_downloads, name):
    root = tmp_path / "data"
    root.mkdir()
    with pytest.raises(UserError) as info:
        load_dataset(name, 32, str(root), download=False)
    message = str(info.value)
    assert "--download" in message and name in message and str(root) in message
    assert list(root.iterdir()) == []


@pytest.mark.parametrize("name", ["cifar10", "svhn"])
def test_dataset_without_root_is_user_error(name):
    with pytest.raises(UserError, match="--data-root"):
        load_dataset(name, 32, None)


def test_ood_set_from_missing_dataset_is_user_error(small_data, tmp_path, no_downloads):
    with pytest.raises(UserError, match="--download"):
        ood_sets(small_data, ["svhn"], [], root=str(tmp_path), download=False)
    with pytest.raises(UserError, match="--data-root"):
        ood_sets(small_data, ["cifar100"], [], root=None)
