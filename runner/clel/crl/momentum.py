"""Momentum (EMA) target networks: the cosine schedule and the update, shared by MoCo and BYOL."""

import math

import torch
from torch import nn


def cosine_momentum(start: float, end: float, progress: float) -> float:
    """start at progress 0, end at progress 1, cosine in between (BYOL's and MoCo v2+'s schedule)."""
    progress = min(max(progress, 0.0), 1.0)
    return end - (end - start) * (math.cos(math.pi * progress) + 1) / 2


@torch.no_grad()
def momentum_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """target <- momentum * target + (1 - momentum) * online, parameters and float buffers."""
    torch._foreach_lerp_(list(target.parameters()), [p.detach() for p in online.parameters()], 1.0 - momentum)
    for t, o in zip(target.buffers(), online.buffers(), strict=True):
        t.copy_(o)
