"""SGLD (values on known energies, grad clip, clamp), the replay buffer, and the per-sample strong augmentation."""

import pytest
import torch
from torch import nn

from runner.clel.augment import StrongAugmentation
from runner.clel.networks import EnergyNet
from runner.clel.sampler import ReplaySampler, sgld
from runner.config import SGLDConfig


def quadratic(c: torch.Tensor):
    """E(x) = ||x - c||^2 / 2 per sample; dE/dx = x - c."""
    return lambda x: 0.5 * (x - c).pow(2).flatten(1).sum(dim=1)


def linear(w: torch.Tensor):
    """E(x) = <w, x> per sample; dE/dx = w."""
    return lambda x: (w * x).flatten(1).sum(dim=1)


def zero_energy(x: torch.Tensor) -> torch.Tensor:
    return 0.0 * x.flatten(1).sum(dim=1)


# --- sgld --------------------------------------------------------------------------------------


@pytest.mark.parametrize("step_size,steps", [(0.5, 1), (0.5, 5), (0.1, 60), (0.9, 3)])
def test_sgld_quadratic_contracts_geometrically(step_size, steps):
    torch.manual_seed(0)
    c = 0.2 + 0.6 * torch.rand(1, 3, 4, 4)
    x0 = torch.rand(5, 3, 4, 4)
    x = sgld(x0, quadratic(c), steps=steps, step_size=step_size, noise=0.0)
    # x_{k+1} - c = (1 - step) (x_k - c), never leaving [0, 1] (a convex combination of x0 and c)
    expected = c + (1 - step_size) ** steps * (x0 - c)
    torch.testing.assert_close(x, expected, rtol=0, atol=1e-6)


def test_sgld_quadratic_unit_step_lands_on_minimum():
    torch.manual_seed(1)
    c = torch.rand(1, 3, 4, 4)
    x = sgld(torch.rand(7, 3, 4, 4), quadratic(c), steps=1, step_size=1.0, noise=0.0)
    torch.testing.assert_close(x, c.expand_as(x), rtol=0, atol=1e-6)
    energy = quadratic(c)(x)
    assert energy.max().item() < 1e-10


def test_sgld_quadratic_with_noise_lowers_energy_and_concentrates_near_minimum():
    torch.manual_seed(2)
    c = 0.3 + 0.4 * torch.rand(1, 3, 8, 8)
    x0 = torch.rand(32, 3, 8, 8)
    energy = quadratic(c)
    x = sgld(x0, energy, steps=30, step_size=0.2, noise=0.01)
    assert (energy(x) < energy(x0)).all()
    # stationary spread of x_{k+1} - c = 0.8 (x_k - c) + 0.01 n: sd 0.01 / sqrt(1 - 0.64)
    assert (x - c).std().item() == pytest.approx(0.01 / 0.6, rel=0.1)
    assert (x - c).mean().abs().item() < 2e-3


def test_sgld_noise_is_gaussian_with_given_scale():
    torch.manual_seed(3)
    x0 = torch.full((64, 3, 8, 8), 0.5)
    x = sgld(x0, zero_energy, steps=1, step_size=1.0, noise=0.01)
    z = (x - 0.5) / 0.01
    assert z.mean().abs().item() < 0.05
    assert z.std().item() == pytest.approx(1.0, rel=0.05)
    assert not torch.equal(sgld(x0, zero_energy, 1, 1.0, 0.01), sgld(x0, zero_energy, 1, 1.0, 0.01))


def test_sgld_lowers_energy_of_small_energy_net():
    torch.manual_seed(0)
    net = EnergyNet([4, 8], 1, 8, 16, 16, 4, (0.5,) * 3, (0.25,) * 3)
    # EnergyNet's N(0, 0.01) head init makes f ~ 1e-4 and E ~ 1e-8, where the noise would dominate;
    # PyTorch's default Linear init gives energies of order 0.1 that SGLD must visibly lower
    for module in net.modules():
        if isinstance(module, nn.Linear):
            module.reset_parameters()
    net.requires_grad_(False)

    def energy(x):
        return 0.5 * net.features(x).pow(2).sum(dim=1)

    x0 = torch.rand(16, 3, 8, 8)
    x = sgld(x0, energy, steps=10, step_size=10.0, noise=0.001)
    before, after = energy(x0), energy(x)
    assert after.mean().item() < 0.98 * before.mean().item()
    assert (after < before).float().mean().item() >= 0.9
    assert x.min().item() >= 0 and x.max().item() <= 1


def test_sgld_grad_clip_is_honoured_exactly():
    torch.manual_seed(4)
    w = 20 * torch.randn(1, 3, 4, 4)  # most |w| far above the clip, some below
    x0 = 0.25 + 0.5 * torch.rand(6, 3, 4, 4)
    step, clip = 0.1, 0.5
    x = sgld(x0, linear(w), steps=1, step_size=step, noise=0.0, grad_clip=clip)
    expected = (x0 - step * w.clamp(-clip, clip)).clamp(0, 1)
    torch.testing.assert_close(x, expected, rtol=0, atol=1e-7)
    assert (x - x0).abs().max().item() <= step * clip + 1e-7
    assert (x - x0).abs().max().item() == pytest.approx(step * clip, abs=1e-6)  # the clip binds somewhere
    small = w.abs() < clip
    assert small.any()
    torch.testing.assert_close((x - x0)[:, small[0]], (-step * w.expand_as(x0))[:, small[0]], rtol=0, atol=1e-7)


def test_sgld_grad_clip_zero_means_no_clip():
    # the reference code clips at the step size by mistake: with step 1e-3 that would move 1e-6 per pixel
    torch.manual_seed(5)
    w = torch.where(torch.rand(1, 3, 4, 4) < 0.5, -100.0, 100.0)
    x0 = torch.full((4, 3, 4, 4), 0.5)
    x = sgld(x0, linear(w), steps=1, step_size=1e-3, noise=0.0, grad_clip=0.0)
    torch.testing.assert_close(x, (x0 - 0.1 * w.sign()), rtol=0, atol=1e-6)


def test_sgld_grad_clip_with_noise_bounds_the_move():
    torch.manual_seed(6)
    w = 50 * torch.randn(1, 3, 8, 8)
    x0 = torch.full((32, 3, 8, 8), 0.5)
    noise = 1e-3
    x = sgld(x0, linear(w), steps=1, step_size=0.05, noise=noise, grad_clip=1.0)
    move = (x - x0 + 0.05 * w.clamp(-1, 1)).abs()  # what is left is the Gaussian noise
    assert move.max().item() <= 6 * noise


def test_sgld_clamps_to_unit_interval():
    torch.manual_seed(7)
    x0 = torch.rand(4, 3, 4, 4)
    up = sgld(x0, linear(torch.full((1, 3, 4, 4), -1.0)), steps=2, step_size=10.0, noise=0.1)
    down = sgld(x0, linear(torch.full((1, 3, 4, 4), 1.0)), steps=2, step_size=10.0, noise=0.1)
    assert torch.equal(up, torch.ones_like(x0)) and torch.equal(down, torch.zeros_like(x0))
    w = torch.where(torch.rand(1, 3, 4, 4) < 0.5, -1.0, 1.0) * (0.2 + torch.rand(1, 3, 4, 4))
    mixed = sgld(x0, linear(w), steps=1, step_size=10.0, noise=0.0)
    assert torch.equal(mixed, (w < 0).float().expand_as(x0))


def test_sgld_leaves_input_alone_and_returns_detached():
    x0 = torch.rand(3, 3, 4, 4, requires_grad=True)
    copy = x0.detach().clone()
    x = sgld(x0, quadratic(torch.full((1, 3, 4, 4), 0.5)), steps=3, step_size=0.3, noise=0.0)
    assert torch.equal(x0.detach(), copy)
    assert not x.requires_grad and x.grad_fn is None


# --- replay buffer -----------------------------------------------------------------------------


def config(**overrides) -> SGLDConfig:
    values = (
        dict(steps=1, step_size=1.0, noise=0.0, grad_clip=0.0, buffer_size=50, reinit_prob=0.0, augment=False)
        | overrides
    )
    return SGLDConfig(**values)


class Recorder(nn.Module):
    """A deterministic 'augmentation' (1 - x) that counts its calls."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return 1 - x


def labelled_sampler(buffer_size: int, **overrides) -> tuple[ReplaySampler, torch.Tensor]:
    """A sampler and a buffer whose row r is the constant r / 100 (r < 50), so each row's source is readable."""
    sampler = ReplaySampler(config(buffer_size=buffer_size, **overrides), Recorder())
    buffer = torch.arange(buffer_size, dtype=torch.float32).div(100).view(-1, 1, 1, 1).expand(-1, 3, 2, 2)
    return sampler, buffer.contiguous()


def rows_of(values: torch.Tensor) -> list[int]:
    """Buffer row numbers of samples that are constant r / 100 + 0.1 (after one step on linear(-0.1))."""
    assert torch.allclose(values, values[:, :1, :1, :1].expand_as(values))
    return torch.round((values[:, 0, 0, 0] - 0.1) * 100).long().tolist()


def test_replay_writes_back_exactly_the_sampled_rows():
    torch.manual_seed(1)
    sampler, buffer = labelled_sampler(50)
    old = buffer.clone()
    x = sampler.sample(buffer, linear(torch.full((1, 3, 2, 2), -0.1)), batch_size=12)
    assert x.shape == (12, 3, 2, 2) and not x.requires_grad
    rows = rows_of(x)
    assert len(set(rows)) == 12
    torch.testing.assert_close(x, old[rows] + 0.1, rtol=0, atol=1e-6)
    assert torch.equal(buffer[rows], x)
    untouched = [r for r in range(50) if r not in rows]
    assert torch.equal(buffer[untouched], old[untouched])


def test_replay_indices_distinct_within_a_batch():
    torch.manual_seed(2)
    energy = linear(torch.full((1, 3, 2, 2), -0.1))
    sampler, buffer = labelled_sampler(40)
    assert sorted(rows_of(sampler.sample(buffer, energy, batch_size=40))) == list(range(40))
    for seed in range(5):
        torch.manual_seed(seed)
        sampler, buffer = labelled_sampler(40)
        rows = rows_of(sampler.sample(buffer, energy, batch_size=30))
        assert len(set(rows)) == 30


def test_replay_without_reinit_starts_from_buffer():
    torch.manual_seed(3)
    sampler, buffer = labelled_sampler(50)
    old = buffer.clone()
    x = sampler.sample(buffer, zero_energy, batch_size=20)
    assert all((old == row).all(dim=(1, 2, 3)).any() for row in x)  # every sample is an unchanged buffer row
    assert sampler.augment.calls == 0


def test_replay_reinit_one_starts_from_fresh_uniform_noise():
    torch.manual_seed(4)
    sampler, buffer = labelled_sampler(50, reinit_prob=1.0)
    old = buffer.clone()
    first = sampler.sample(buffer, zero_energy, batch_size=40)  # zero energy, no noise: SGLD returns its start
    per_row_spread = first.flatten(1).max(dim=1).values - first.flatten(1).min(dim=1).values
    assert (per_row_spread > 0.2).all()  # none is a (constant) buffer row
    assert first.min().item() >= 0 and first.max().item() < 1
    assert first.mean().item() == pytest.approx(0.5, abs=0.05)
    assert first.var().item() == pytest.approx(1 / 12, abs=0.015)
    second = sampler.sample(buffer, zero_energy, batch_size=40)
    assert not torch.equal(first, second)
    changed = (buffer != old).flatten(1).any(dim=1)
    assert changed.sum().item() >= 40


def test_replay_reinit_share_follows_probability():
    torch.manual_seed(5)
    sampler, buffer = labelled_sampler(400, reinit_prob=0.5)
    x = sampler.sample(buffer, zero_energy, batch_size=300)
    constant = (x == x[:, :1, :1, :1]).flatten(1).all(dim=1)
    assert 0.4 < 1 - constant.float().mean().item() < 0.6  # binomial(300, 0.5): sd 0.03


def test_replay_augments_before_sgld_when_configured():
    torch.manual_seed(6)
    sampler, buffer = labelled_sampler(50, augment=True)
    old = buffer.clone()
    x = sampler.sample(buffer, linear(torch.full((1, 3, 2, 2), 0.1)), batch_size=10)
    assert sampler.augment.calls == 1
    # 1 - r/100 (the recorder's augmentation), then one SGLD step of -0.1: r = round((0.9 - v) * 100)
    rows = torch.round((0.9 - x[:, 0, 0, 0]) * 100).long()
    torch.testing.assert_close(x, 0.9 - old[rows], rtol=0, atol=1e-6)
    assert len(set(rows.tolist())) == 10


# --- strong augmentation -----------------------------------------------------------------------


def test_strong_augmentation_differs_across_samples_of_one_batch():
    torch.manual_seed(0)
    image = torch.rand(1, 3, 16, 16)
    batch = image.expand(16, -1, -1, -1).contiguous()
    out = StrongAugmentation(16)(batch)
    assert out.shape == batch.shape and out.dtype == torch.float32
    flat = out.flatten(1)
    distance = torch.cdist(flat, flat)
    off_diagonal = distance[~torch.eye(16, dtype=torch.bool)]
    # one draw per batch (torchvision v2 on a batched tensor) would make every pair identical
    assert off_diagonal.min().item() > 1e-3
    assert torch.equal(batch, image.expand(16, -1, -1, -1))  # the input is not modified


def test_strong_augmentation_is_random_across_calls_and_keeps_size():
    torch.manual_seed(1)
    augment = StrongAugmentation(8)
    x = torch.rand(4, 3, 8, 8)
    a, b = augment(x), augment(x)
    assert a.shape == (4, 3, 8, 8)
    assert not torch.allclose(a, b)
    assert (a.flatten(1) - x.flatten(1)).abs().max(dim=1).values.min().item() > 1e-3
