"""SGLD on the marginal energy, from a replay buffer (docs/ARCHITECTURE.md, "The training step")."""

from collections.abc import Callable

import torch
from torch import nn

from runner.config import SGLDConfig

EnergyFn = Callable[[torch.Tensor], torch.Tensor]


def sgld(
    x: torch.Tensor, energy_fn: EnergyFn, steps: int, step_size: float, noise: float, grad_clip: float = 0.0
) -> torch.Tensor:
    """x <- clamp(x - step_size * dE/dx + noise * N(0, 1), 0, 1), `steps` times; grad_clip 0 = no clip."""
    x = x.detach()
    for _ in range(steps):
        x.requires_grad_(True)
        (grad,) = torch.autograd.grad(energy_fn(x).sum(), x)
        if grad_clip > 0:
            grad = grad.clamp(-grad_clip, grad_clip)
        # noise drawn in logical (NCHW) order, so channels-last and contiguous chains see the same numbers
        x = (x - step_size * grad + noise * torch.randn(x.shape, device=x.device)).clamp_(0, 1).detach()
    return x


class ReplaySampler:
    """SGLD chains kept in a replay buffer (the model's): draw a batch, re-initialise some to noise, augment, run
    SGLD, store back."""

    def __init__(self, cfg: SGLDConfig, augment: nn.Module):
        self.cfg = cfg
        self.augment = augment

    def advance(self, x: torch.Tensor, energy_fn: EnergyFn) -> torch.Tensor:
        """One round of the chains x: re-initialise some to noise, augment, run SGLD."""
        cfg = self.cfg
        reinit = torch.rand(len(x), device=x.device) < cfg.reinit_prob
        x = torch.where(reinit.view(-1, 1, 1, 1), torch.rand(x.shape, device=x.device), x)
        if cfg.augment:
            x = self.augment(x)
        return sgld(x, energy_fn, cfg.steps, cfg.step_size, cfg.noise, cfg.grad_clip)

    def sample(self, buffer: torch.Tensor, energy_fn: EnergyFn, batch_size: int) -> torch.Tensor:
        """One batch of negatives x~ (detached) from distinct random rows of `buffer`, which is updated in place."""
        index = torch.randperm(self.cfg.buffer_size, device=buffer.device)[:batch_size]
        x = self.advance(buffer[index], energy_fn)
        buffer[index] = x
        return x
