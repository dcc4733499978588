"""What every self-supervised method is: its settings, its facts, and the latent contract of the EBM's z."""

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from runner.config.sections import OptimizerConfig, Section


class MethodSettings(Section):
    """A method's table in the config (crl.<name>); each method declares its fields with their defaults."""

    optimizer: OptimizerConfig

    def latent_size(self) -> int:
        """The dimension of the unit latent z the method gives the EBM (its `latent_dim` unless it says otherwise)."""
        return self.latent_dim


def sgd(lr: float = 0.03) -> OptimizerConfig:
    """CLEL's encoder optimizer: SGD, momentum 0.9, weight decay 5e-4, cosine decay."""
    return OptimizerConfig(
        name="sgd",
        lr=lr,
        momentum=0.9,
        weight_decay=5e-4,
        betas=[0.9, 0.999],
        warmup_iterations=0,
        schedule="cosine",
        lr_batch_scaling=False,
    )


def optimizer_field(default: OptimizerConfig) -> OptimizerConfig:
    """A method's optimizer setting with its default."""
    return Field(default_factory=lambda: default)


@dataclass(frozen=True)
class BuildContext:
    """What a method is built for: image size, the data's channel statistics, the ResNet width, the augmentation."""

    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    backbone_width: int
    augment: nn.Module


@dataclass
class CRLOutput:
    """The method's loss and the detached unit latents of the batch's first augmented view."""

    loss: torch.Tensor
    latent: torch.Tensor


class SelfSupervisedMethod(nn.Module):
    """An encoder trained by a self-supervised loss; its unit-norm latent z(x) guides the EBM.

    A method declares `Settings` (its config table, with defaults), `has_negatives` (whether the EBM's samples
    can serve as extra negatives) and implements `build`, `embed` and `loss`; the base class owns `latent`.
    """

    Settings: ClassVar[type[MethodSettings]]
    has_negatives: ClassVar[bool] = False
    augment: nn.Module  # the strong augmentation: the views of the loss, and the view the EBM's z is taken from

    @classmethod
    def build(cls, settings: MethodSettings, context: BuildContext) -> "SelfSupervisedMethod":
        """The method, on CPU, from its settings."""
        raise NotImplementedError

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The unnormalised latent of images x in [0, 1] (with gradient)."""
        raise NotImplementedError

    @torch.no_grad()
    def latent(self, x: torch.Tensor) -> torch.Tensor:
        """Unit vectors z(x) for images x in [0, 1], no gradient; in train mode BatchNorm uses batch statistics."""
        return F.normalize(self.embed(x).float(), dim=1)

    def loss(self, x: torch.Tensor, generated_negatives: torch.Tensor | None = None) -> CRLOutput:
        """The self-supervised loss on images x; generated_negatives are extra unit keys (if supported)."""
        raise NotImplementedError

    def on_step(self, progress: float) -> None:
        """Called after each optimizer step with training progress in [0, 1] (momentum schedules)."""
