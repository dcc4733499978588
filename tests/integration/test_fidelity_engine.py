"""The baseline's training step computes what the reference implementation computes (docs/FIDELITY.md): spectral
norm's sigma estimate of every conv against torch.linalg.matrix_norm after one training step, and the EBM's z from
the encoder's own strong view. The augmentation, the initialisation and the data: tests/unit/test_fidelity.py."""

import pytest
import torch

from runner.clel.engine import Engine
from runner.clel.model import training_engine
from runner.clel.networks import spectral_norm_estimates
from tests.support import tiny_cfg


def engine(digits, **overrides) -> Engine:
    """The tiny baseline's engine at tiny_cfg's sizes (sgld.steps 5, buffer 200, batch 16); `overrides` dotted."""
    return training_engine(tiny_cfg(overrides=overrides), digits, torch.device("cpu"))


# --- spectral norm -------------------------------------------------------------------------------------


def test_sigma_estimates_are_within_1e_3_of_the_largest_singular_value_after_one_step(digits):
    t = engine(digits)
    assert t.model.cfg.ebm.power_iterations == 22
    t.train_step()
    estimates = spectral_norm_estimates(t.model.ebm)
    assert len(estimates) == sum(isinstance(m, torch.nn.Conv2d) for m in t.model.ebm.modules())
    for name, (estimate, true) in estimates.items():
        assert estimate == pytest.approx(true, rel=1e-3), name


def test_one_power_iteration_per_step_leaves_the_estimate_low(digits):
    t = engine(digits, **{"ebm.power_iterations": 1})
    t.train_step()
    ratios = [estimate / true for estimate, true in spectral_norm_estimates(t.model.ebm).values()]
    assert min(ratios) < 0.99  # what the oracle above would catch


# --- where z comes from ------------------------------------------------------------------------------


def _captured_latents(t: Engine) -> dict[str, torch.Tensor]:
    seen: dict[str, torch.Tensor] = {}
    m = t.model
    joint, loss, own = m.energy.joint, m.crl.loss, m.latent_of_own_view

    def record_joint(f, u, z, beta=None):
        seen["z"] = z
        return joint(f, u, z, beta)

    def record_loss(x, negatives=None):
        out = loss(x, negatives)
        seen["loss view"] = out.latent
        return out

    def record_own(x):
        seen["running mean before"] = m.crl.backbone.net[2].running_mean.clone()
        seen["own view"] = own(x)
        seen["running mean after"] = m.crl.backbone.net[2].running_mean.clone()
        return seen["own view"]

    m.energy.joint, m.crl.loss, m.latent_of_own_view = record_joint, record_loss, record_own
    t.train_step()
    return seen


def test_the_default_z_is_the_encoders_latent_of_its_own_strong_view(digits):
    seen = _captured_latents(engine(digits))
    assert torch.equal(seen["z"], seen["own view"])
    assert not torch.allclose(seen["z"], seen["loss view"])
    assert torch.allclose(seen["z"].norm(dim=1), torch.ones(16))
    # the encoder is in train mode there, as in the reference: BatchNorm updates its running statistics
    assert not torch.equal(seen["running mean before"], seen["running mean after"])


def test_latent_view_loss_reuses_the_first_view_of_the_methods_loss(digits):
    seen = _captured_latents(engine(digits, **{"crl.latent_view": "loss"}))
    assert "own view" not in seen
    assert torch.equal(seen["z"], seen["loss view"])
