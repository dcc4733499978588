"""The one interface every self-supervised method implements."""

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class CRLOutput:
    """The method's loss and the detached unit latents of the batch's first augmented view (the EBM's z)."""

    loss: torch.Tensor
    latent: torch.Tensor


class SelfSupervisedMethod(nn.Module):
    """An encoder trained by a self-supervised loss; its unit-norm latent guides the EBM."""

    latent_dim: int
    has_negatives: bool = False

    def latent(self, x: torch.Tensor) -> torch.Tensor:
        """Unit vectors z(x) for un-augmented images x in [0, 1]; no gradient."""
        raise NotImplementedError

    def loss(self, x: torch.Tensor, generated_negatives: torch.Tensor | None = None) -> CRLOutput:
        """The self-supervised loss on images x; generated_negatives are extra unit keys (if supported)."""
        raise NotImplementedError

    def on_step(self, progress: float) -> None:
        """Called after each optimizer step with training progress in [0, 1] (momentum schedules)."""
