"""Methods with momentum (EMA) target networks: the cosine schedule, the update, and their base class."""

import copy
import math

import torch
from torch import nn

from runner.clel.encoders.base import SelfSupervisedMethod


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


class MomentumMethod(SelfSupervisedMethod):
    """A method whose online backbone and projector have frozen EMA copies (MoCo's keys, BYOL's targets)."""

    def __init__(self, backbone: nn.Module, projector: nn.Module, momentum_start: float, momentum_end: float):
        super().__init__()
        self.backbone, self.projector = backbone, projector
        self.target_backbone = copy.deepcopy(backbone).requires_grad_(False)
        self.target_projector = copy.deepcopy(projector).requires_grad_(False)
        self.momentum_start, self.momentum_end = momentum_start, momentum_end
        self.momentum = momentum_start

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The online networks' projection of x."""
        return self.projector(self.backbone(x))

    def representation(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    @torch.no_grad()
    def target(self, x: torch.Tensor) -> torch.Tensor:
        """The target networks' projection of x (no gradient)."""
        return self.target_projector(self.target_backbone(x))

    def on_step(self, progress: float) -> None:
        self.momentum = cosine_momentum(self.momentum_start, self.momentum_end, progress)
        momentum_update(self.target_backbone, self.backbone, self.momentum)
        momentum_update(self.target_projector, self.projector, self.momentum)
