"""The baseline computes what the reference implementation computes (docs/FIDELITY.md), each step against an oracle.

Colour augmentation: kornia's ColorJiggle (kornia 0.6.3's ColorJitter) with the same drawn parameters, and its
additive brightness derived by hand; no clamp after augmenting; spectral norm: the sigma estimate of every
conv against torch.linalg.matrix_norm after one training step; the EBM's z from its own strong view; the
encoder stem's default init; the reference's channel statistics for CIFAR-10.
"""

import kornia.augmentation as K
import pytest
import torch

import runner.data
from runner.clel.augment import StrongAugmentation
from runner.clel.networks import ResNet18Backbone, spectral_norm_estimates
from runner.clel.train import Trainer
from runner.config import ExperimentsFile
from runner.data import REFERENCE_STATISTICS, load_dataset

SMALL = {"sgld.steps": 5, "sgld.buffer_size": 200, "train.batch_size": 16}


def trainer(digits, **overrides) -> Trainer:
    cfg = ExperimentsFile().resolve("baseline", "tiny", 0, {**SMALL, **overrides})
    return Trainer(cfg, digits, torch.device("cpu"))


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


# --- spectral norm -------------------------------------------------------------------------------------


def test_sigma_estimates_are_within_1e_3_of_the_largest_singular_value_after_one_step(digits):
    t = trainer(digits)
    assert t.cfg.ebm.power_iterations == 22
    t.train_step()
    estimates = spectral_norm_estimates(t.ebm)
    assert len(estimates) == sum(isinstance(m, torch.nn.Conv2d) for m in t.ebm.modules())
    for name, (estimate, true) in estimates.items():
        assert estimate == pytest.approx(true, rel=1e-3), name


def test_one_power_iteration_per_step_leaves_the_estimate_low(digits):
    t = trainer(digits, **{"ebm.power_iterations": 1})
    t.train_step()
    ratios = [estimate / true for estimate, true in spectral_norm_estimates(t.ebm).values()]
    assert min(ratios) < 0.99  # what the oracle above would catch


# --- where z comes from ------------------------------------------------------------------------------


def _captured_latents(t: Trainer) -> dict[str, torch.Tensor]:
    seen: dict[str, torch.Tensor] = {}
    joint, loss, own = t.energy.joint, t.crl.loss, t.latent_of_own_view

    def record_joint(f, u, z, beta=None):
        seen["z"] = z
        return joint(f, u, z, beta)

    def record_loss(x, negatives=None):
        out = loss(x, negatives)
        seen["loss view"] = out.latent
        return out

    def record_own(x):
        seen["running mean before"] = t.crl.backbone.net[2].running_mean.clone()
        seen["own view"] = own(x)
        seen["running mean after"] = t.crl.backbone.net[2].running_mean.clone()
        return seen["own view"]

    t.energy.joint, t.crl.loss, t.latent_of_own_view = record_joint, record_loss, record_own
    t.train_step()
    return seen


def test_the_default_z_is_the_encoders_latent_of_its_own_strong_view(digits):
    seen = _captured_latents(trainer(digits))
    assert torch.equal(seen["z"], seen["own view"])
    assert not torch.allclose(seen["z"], seen["loss view"])
    assert torch.allclose(seen["z"].norm(dim=1), torch.ones(16))
    # the encoder is in train mode there, as in the reference: BatchNorm updates its running statistics
    assert not torch.equal(seen["running mean before"], seen["running mean after"])


def test_latent_view_loss_reuses_the_first_view_of_the_methods_loss(digits):
    seen = _captured_latents(trainer(digits, **{"crl.latent_view": "loss"}))
    assert "own view" not in seen
    assert torch.equal(seen["z"], seen["loss view"])


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
    monkeypatch.setattr(runner.data, "_torchvision_set", lambda name, root, download, train: fake)
    data = load_dataset("cifar10", 32, "/nowhere")
    assert (data.mean, data.std) == REFERENCE_STATISTICS["cifar10"]
    assert data.mean == (0.4914, 0.4822, 0.4465) and data.std == (0.2470, 0.2435, 0.2616)
