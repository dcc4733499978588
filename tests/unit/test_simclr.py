"""SimCLR: NT-Xent against a direct loop (with and without generated negatives), closed forms, and the method."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from runner.clel.encoders import CRLOutput
from runner.clel.encoders.simclr import SimCLR, nt_xent
from runner.clel.model import build_crl
from tests.support import tiny_cfg
from tests.support.modules import RecordingAugment


def loop_nt_xent(queries: np.ndarray, temperature: float, extra_keys: np.ndarray | None = None) -> float:
    """NT-Xent written out: anchor i, positive i +- N, denominator over every other row and every extra key."""
    z = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    keys = list(z)
    if extra_keys is not None:
        keys += list(extra_keys / np.linalg.norm(extra_keys, axis=1, keepdims=True))
    two_n = len(z)
    n = two_n // 2
    total = 0.0
    for i in range(two_n):
        positive = (i + n) % two_n
        denominator = 0.0
        for k, key in enumerate(keys):
            if k != i:
                denominator += math.exp(float(z[i] @ key) / temperature)
        total += -math.log(math.exp(float(z[i] @ z[positive]) / temperature) / denominator)
    return total / two_n


def torch_loop_nt_xent(queries: torch.Tensor, temperature: float, extra_keys: torch.Tensor | None) -> torch.Tensor:
    """The same loop in torch, for gradients."""
    z = F.normalize(queries, dim=1)
    keys = z if extra_keys is None else torch.cat([z, F.normalize(extra_keys, dim=1)])
    n = len(z) // 2
    losses = []
    for i in range(len(z)):
        sims = keys @ z[i] / temperature
        others = torch.cat([sims[:i], sims[i + 1 :]])
        losses.append(torch.logsumexp(others, dim=0) - sims[(i + n) % len(z)])
    return torch.stack(losses).mean()


@pytest.mark.parametrize("n,d,m,temperature", [(4, 5, 0, 0.2), (4, 5, 3, 0.2), (3, 8, 7, 0.5), (1, 3, 2, 1.0)])
def test_nt_xent_equals_loop(n, d, m, temperature):
    g = torch.Generator().manual_seed(n * 100 + m)
    queries = torch.randn(2 * n, d, generator=g, dtype=torch.float64)
    extra = torch.randn(m, d, generator=g, dtype=torch.float64) if m else None
    got = nt_xent(queries, temperature, extra)
    expected = loop_nt_xent(queries.numpy(), temperature, None if extra is None else extra.numpy())
    assert got.item() == pytest.approx(expected, rel=1e-12)
    # float32 too, at float32 precision
    got32 = nt_xent(queries.float(), temperature, None if extra is None else extra.float())
    assert got32.item() == pytest.approx(expected, rel=1e-5)


def test_nt_xent_gradient_equals_loop_gradient():
    g = torch.Generator().manual_seed(0)
    q1 = torch.randn(6, 4, generator=g, dtype=torch.float64, requires_grad=True)
    q2 = q1.detach().clone().requires_grad_(True)
    extra = torch.randn(3, 4, generator=g, dtype=torch.float64)
    nt_xent(q1, 0.2, extra).backward()
    torch_loop_nt_xent(q2, 0.2, extra).backward()
    torch.testing.assert_close(q1.grad, q2.grad, rtol=1e-10, atol=1e-12)


def test_nt_xent_closed_forms():
    n, m, t = 3, 4, 0.2
    same = torch.ones(2 * n, 5, dtype=torch.float64)
    # every similarity 1: each anchor's positive is 1 of 2N - 1 equal terms
    assert nt_xent(same, t).item() == pytest.approx(math.log(2 * n - 1), rel=1e-12)
    assert nt_xent(same, t, torch.ones(m, 5, dtype=torch.float64)).item() == pytest.approx(math.log(2 * n - 1 + m))
    # extra keys orthogonal to every query contribute exp(0 / t) = 1 each
    queries = torch.zeros(2 * n, 5, dtype=torch.float64)
    queries[:, 0] = 1
    orthogonal = torch.zeros(m, 5, dtype=torch.float64)
    orthogonal[:, 1] = 1
    expected = math.log(2 * n - 1 + m * math.exp(-1 / t))
    assert nt_xent(queries, t, orthogonal).item() == pytest.approx(expected, rel=1e-12)


def test_nt_xent_extra_keys_only_add_negatives():
    g = torch.Generator().manual_seed(1)
    queries = torch.randn(8, 6, generator=g, dtype=torch.float64)
    extra = torch.randn(5, 6, generator=g, dtype=torch.float64)
    base = nt_xent(queries, 0.2).item()
    with_extra = nt_xent(queries, 0.2, extra).item()
    assert with_extra > base
    assert nt_xent(queries, 0.2, extra[:0]).item() == pytest.approx(base, rel=1e-12)  # zero extra keys
    # keys are normalised: their scale does not matter, neither does the queries'
    assert nt_xent(queries, 0.2, 7.5 * extra).item() == pytest.approx(with_extra, rel=1e-12)
    assert nt_xent(3.0 * queries, 0.2, extra).item() == pytest.approx(with_extra, rel=1e-12)
    # extra keys that copy existing rows are counted again as negatives, as the loop says
    copies = queries[[0, 3, 5]]
    expected = loop_nt_xent(queries.numpy(), 0.2, copies.numpy())
    assert nt_xent(queries, 0.2, copies).item() == pytest.approx(expected, rel=1e-12)
    # the denominator grows by exactly the extra keys' terms: recover the base loss from the difference
    z = F.normalize(queries, dim=1)
    ek = F.normalize(extra, dim=1)
    logits = z @ z.T / 0.2
    logits.fill_diagonal_(float("-inf"))
    positive = torch.cat([torch.arange(4, 8), torch.arange(4)])
    lse_base = torch.logsumexp(logits, dim=1)
    lse_extra = torch.logsumexp(torch.cat([logits, z @ ek.T / 0.2], dim=1), dim=1)
    pos = logits[torch.arange(8), positive]
    assert base == pytest.approx((lse_base - pos).mean().item(), rel=1e-12)
    assert with_extra == pytest.approx((lse_extra - pos).mean().item(), rel=1e-12)


def test_nt_xent_does_not_modify_inputs():
    queries = torch.randn(6, 4)
    extra = torch.randn(2, 4)
    q, e = queries.clone(), extra.clone()
    nt_xent(queries, 0.2, extra)
    assert torch.equal(queries, q) and torch.equal(extra, e)


# --- the method --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cfg():
    return tiny_cfg()


@pytest.fixture
def method(cfg) -> SimCLR:
    torch.manual_seed(0)
    m = build_crl(cfg, (0.3, 0.3, 0.3), (0.3, 0.3, 0.3))
    assert isinstance(m, SimCLR)
    return m


def test_built_method_follows_config(method, cfg):
    assert method.latent_dim == cfg.crl.simclr.latent_dim == 64
    assert method.temperature == cfg.crl.simclr.temperature == 0.2
    assert method.has_negatives
    assert method.projector[-1].out_features == 64


def test_latent_is_unit_norm_without_grad_and_unaugmented(method):
    torch.manual_seed(1)
    x = torch.rand(6, 3, 16, 16)
    method.eval()
    z = method.latent(x)
    assert z.shape == (6, 64)
    assert not z.requires_grad
    torch.testing.assert_close(z.norm(dim=1), torch.ones(6), rtol=0, atol=1e-5)
    with torch.no_grad():
        expected = F.normalize(method.projector(method.backbone(x)), dim=1)
    torch.testing.assert_close(z, expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(method.latent(x), z, rtol=0, atol=0)  # no random augmentation in latent()


def test_loss_latent_is_normalised_first_view_and_loss_is_nt_xent(method):
    torch.manual_seed(2)
    method.train()
    method.augment = RecordingAugment(method.augment)
    x = torch.rand(5, 3, 16, 16)
    negatives = F.normalize(torch.randn(7, 64), dim=1)
    out = method.loss(x, negatives)
    assert isinstance(out, CRLOutput)
    views = method.augment.last
    assert views.shape == (10, 3, 16, 16)
    assert not torch.allclose(views[:5], views[5:])  # two different augmentations of the same images
    assert out.latent.shape == (5, 64)
    assert not out.latent.requires_grad and out.latent.grad_fn is None
    torch.testing.assert_close(out.latent.norm(dim=1), torch.ones(5), rtol=0, atol=1e-5)
    with torch.no_grad():
        y = method.projector(method.backbone(views))  # train-mode BatchNorm: same batch, same statistics
    torch.testing.assert_close(out.latent, F.normalize(y[:5], dim=1), rtol=0, atol=1e-5)
    assert out.loss.ndim == 0 and out.loss.requires_grad
    assert out.loss.item() == pytest.approx(nt_xent(y, 0.2, negatives).item(), rel=1e-5)
    assert out.loss.item() == pytest.approx(loop_nt_xent(y.double().numpy(), 0.2, negatives.double().numpy()), rel=1e-4)
    assert out.loss.item() > nt_xent(y, 0.2).item()  # the generated negatives are used


def test_loss_without_negatives_and_gradients_reach_the_encoder(method):
    torch.manual_seed(3)
    method.train()
    method.augment = RecordingAugment(method.augment)
    out = method.loss(torch.rand(4, 3, 16, 16))
    with torch.no_grad():
        y = method.projector(method.backbone(method.augment.last))
    assert out.loss.item() == pytest.approx(loop_nt_xent(y.double().numpy(), 0.2), rel=1e-4)
    out.loss.backward()
    assert method.projector[-1].weight.grad is not None and method.projector[-1].weight.grad.abs().sum() > 0
    first_conv = next(module for module in method.backbone.modules() if isinstance(module, nn.Conv2d))
    assert first_conv.weight.grad is not None and first_conv.weight.grad.abs().sum() > 0
