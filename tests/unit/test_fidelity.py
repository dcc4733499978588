"""The baseline computes what the reference implementation computes (docs/FIDELITY.md), each step against an oracle.

Colour augmentation: kornia's ColorJiggle (kornia 0.6.3's ColorJitter) with the same drawn parameters, and its
additive brightness derived by hand; no clamp after augmenting; the encoder stem's default init; the reference's
channel statistics for CIFAR-10. Spectral norm and the EBM's z in a training step:
tests/integration/test_fidelity_engine.py.
"""

import kornia.augmentation as K
import numpy as np
import pytest
import torch

import runner.data
from runner.clel.augment import CROP_TRIALS, ReferenceCropSizes, StrongAugmentation
from runner.clel.networks import ResNet18Backbone
from runner.data import REFERENCE_STATISTICS, load_dataset

# --- augmentation ------------------------------------------------------------------------------------


def test_colour_step_is_colorjiggle_applied_with_the_same_drawn_parameters():
    torch.manual_seed(3)
    augment = StrongAugmentation(16)
    x = torch.rand(32, 3, 16, 16)
    out = augment(x)
    crop, colour, gray, flip = (item.data for item in augment.pipeline._params)
    assert colour["batch_prob"].any() and not colour["batch_prob"].all()  # p = 0.8: some images, not all
    replayed = K.RandomResizedCrop((16, 16), scale=(0.08, 1.0), resample="BICUBIC")(x, params=crop)
    replayed = K.ColorJiggle(0.4, 0.4, 0.4, 0.1, p=0.8)(replayed, params=colour)
    replayed = K.RandomGrayscale(p=0.2)(replayed, params=gray)
    replayed = K.RandomHorizontalFlip()(replayed, params=flip)
    assert torch.equal(out, replayed)
    # torchvision's semantics (kornia >= 0.7's ColorJitter) give other pixels for the same parameters
    jitter = K.RandomResizedCrop((16, 16), scale=(0.08, 1.0), resample="BICUBIC")(x, params=crop)
    jitter = K.ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8)(jitter, params=colour)
    jitter = K.RandomHorizontalFlip()(K.RandomGrayscale(p=0.2)(jitter, params=gray), params=flip)
    assert (jitter - out).abs().max().item() > 0.05


def crop_rule_expectation(size: int, strict: bool, grid: int = 3000) -> tuple[float, float]:
    """(full-width-or-height fraction, mean area fraction) of a resized crop of a size x size image, derived.

    One candidate: area ~ U(0.08, 1) size^2, log aspect ~ U(log 3/4, log 4/3), w = round(sqrt(area aspect)),
    h = round(sqrt(area / aspect)); it fits when 0 < w, h and w, h < size (strict, kornia 0.6.3) or <= size
    (kornia >= 0.7). The kept crop is the first of ten candidates that fits (so distributed as one candidate
    given that it fits), else the fallback: 0.6.3's round(0.75 size) x size, kornia >= 0.7's whole image.
    Integrated on a midpoint grid of the two uniform variables.
    """
    unit = (np.arange(grid) + 0.5) / grid
    area = (0.08 + 0.92 * unit)[:, None] * size * size
    aspect = np.exp(np.log(3 / 4) + (np.log(4 / 3) - np.log(3 / 4)) * unit)[None, :]
    w, h = np.rint(np.sqrt(area * aspect)), np.rint(np.sqrt(area / aspect))
    limit = size - 1 if strict else size
    fits = (w > 0) & (w <= limit) & (h > 0) & (h <= limit)
    p_fit = fits.mean()
    full_given_fit = ((w == size) | (h == size))[fits].mean()
    area_given_fit = (w * h)[fits].mean() / size**2
    p_fallback = (1 - p_fit) ** CROP_TRIALS
    fallback_area = np.rint(0.75 * size) / size if strict else 1.0
    full = (1 - p_fallback) * full_given_fit + p_fallback
    return full, (1 - p_fallback) * area_given_fit + p_fallback * fallback_area


def drawn_crop_statistics(crop: K.RandomResizedCrop, size: int, draws: int = 20000) -> tuple[float, float]:
    """(full-width-or-height fraction, mean area fraction) of `draws` crops drawn by the augmentation."""
    params = crop.forward_parameters(torch.Size([draws, 3, size, size]))
    src = params["src"]
    width = src[:, 1, 0] - src[:, 0, 0] + 1
    height = src[:, 2, 1] - src[:, 1, 1] + 1
    full = ((width == size) | (height == size)).double().mean().item()
    return full, (width * height).double().mean().item() / size**2


@pytest.mark.parametrize("size", [16, 32])
def test_crop_sizes_follow_kornia_063s_rule_not_the_installed_kornias(size):
    """20,000 crops of the strong augmentation against the rule's derived full-size fraction and mean area (the
    reference's at 32 x 32: 0% full-size, mean area 0.464); kornia >= 0.7's own rule is rejected by the same test.
    Tolerance: 4 standard errors of a 20,000-draw mean (area fraction sd <= 0.3, so 4 x 0.3 / sqrt(20000))."""
    tolerance = 4 * 0.3 / np.sqrt(20000)
    torch.manual_seed(size)
    ours = drawn_crop_statistics(StrongAugmentation(size).pipeline[0], size)
    expected_full, expected_area = crop_rule_expectation(size, strict=True)
    assert expected_full < 1e-4  # a candidate fits in 10 tries all but (1 - p)^10 of the time
    assert ours[0] == pytest.approx(expected_full, abs=3e-4)
    assert ours[1] == pytest.approx(expected_area, abs=tolerance)
    installed = drawn_crop_statistics(K.RandomResizedCrop((size, size), scale=(0.08, 1.0)), size)
    installed_full, installed_area = crop_rule_expectation(size, strict=False)
    assert installed[0] == pytest.approx(installed_full, abs=4 * np.sqrt(installed_full / 20000))
    assert installed[1] == pytest.approx(installed_area, abs=tolerance)
    assert abs(installed[1] - expected_area) > 2 * tolerance and installed_full > 0.05
    if size == 32:
        assert (expected_area, installed_area, installed_full) == pytest.approx((0.464, 0.490, 0.0655), abs=2e-3)


def test_reference_crop_sizes_match_kornia_063s_generator_draw_for_draw():
    """The same generator state gives 0.6.3's sizes: its formula written out here on the drawn uniforms (the
    swap of w and h included), and kornia's start positions for them."""
    crop = StrongAugmentation(16).pipeline[0]
    generator = crop._param_generator
    torch.manual_seed(7)
    params = crop.forward_parameters(torch.Size([500, 3, 16, 16]))
    torch.manual_seed(7)
    area = (torch.rand(500, CROP_TRIALS) * 0.92 + 0.08) * 256
    low, high = np.log(3 / 4), np.log(4 / 3)
    aspect = torch.exp(torch.rand(500, CROP_TRIALS) * (high - low) + low)
    w, h = torch.sqrt(area * aspect).round(), torch.sqrt(area / aspect).round()
    x_start, y_start = torch.rand(500), torch.rand(500)
    for i in range(500):
        fits = [k for k in range(CROP_TRIALS) if 0 < w[i, k] < 16 and 0 < h[i, k] < 16]
        crop_h, crop_w = (w[i, fits[0]], h[i, fits[0]]) if fits else (12.0, 16.0)
        src = params["src"][i]
        assert (src[2, 1] - src[1, 1] + 1, src[1, 0] - src[0, 0] + 1) == (crop_h, crop_w)
        assert src[0, 0] == torch.floor(x_start[i] * (16 - crop_w + 1))
        assert src[0, 1] == torch.floor(y_start[i] * (16 - crop_h + 1))
    assert isinstance(generator, ReferenceCropSizes)


def test_black_images_turn_grey_as_additive_brightness_predicts():
    """Black stays black under multiplicative brightness; with the reference's additive brightness a black image
    becomes grey when the jitter runs (p = 0.8) with a brightness factor above 1 (half of U(0.6, 1.4)): 40%."""
    torch.manual_seed(0)
    out = StrongAugmentation(8)(torch.zeros(4000, 3, 8, 8))
    grey = out.flatten(1).amax(dim=1) > 0
    assert grey.float().mean().item() == pytest.approx(0.4, abs=0.03)
    assert out.min().item() == 0 and out.max().item() <= 0.4 * 1.4 + 1e-6  # (b - 1) then at most contrast 1.4


def test_no_clamp_after_augmenting_the_bicubic_overshoot_survives():
    torch.manual_seed(1)
    out = StrongAugmentation(16)(torch.rand(1000, 3, 16, 16))
    outside = ((out < 0) | (out > 1)).flatten(1).any(dim=1).float().mean().item()
    assert 0.05 < outside < 0.3  # the images the colour step does not run on keep the crop's overshoot


# --- initialisation and data ---------------------------------------------------------------------------


def test_the_encoder_stem_keeps_torchs_default_init_the_other_convs_kaiming_normal():
    torch.manual_seed(0)
    backbone = ResNet18Backbone(64, (0.5,) * 3, (0.25,) * 3)
    stem = backbone.net[1]
    bound = 1 / (3 * 3 * 3) ** 0.5  # kaiming_uniform(a=sqrt(5)) on fan_in 27: U(-1/sqrt(27), 1/sqrt(27))
    assert stem.weight.abs().max().item() <= bound
    assert stem.weight.std().item() == pytest.approx(bound / 3**0.5, rel=0.1)  # std of U(-b, b)
    conv = backbone.net[4].conv1  # kaiming_normal, fan_out = 64 * 9, gain sqrt(2)
    assert conv.weight.std().item() == pytest.approx((2 / (64 * 9)) ** 0.5, rel=0.05)


def test_cifar10_is_normalised_with_the_reference_constants(monkeypatch):
    fake = torch.randint(0, 256, (10, 3, 32, 32), dtype=torch.uint8)
    labels = torch.zeros(10, dtype=torch.long)
    monkeypatch.setattr(runner.data, "_torchvision_set_with_labels", lambda name, root, download, train: (fake, labels))
    data = load_dataset("cifar10", 32, "/nowhere")
    assert (data.mean, data.std) == REFERENCE_STATISTICS["cifar10"]
    assert data.mean == (0.4914, 0.4822, 0.4465) and data.std == (0.2470, 0.2435, 0.2616)
