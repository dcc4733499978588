"""What every self-supervised method is: its interface, and the latent contract of the EBM's z (its settings are
in runner/config/methods.py)."""

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from runner.clel.augment import StrongAugmentation
from runner.clel.networks import ResNet18Backbone
from runner.config.methods import MethodSettings


@dataclass(frozen=True)
class BuildContext:
    """What a method is built for: image size, the data's channel statistics, the ResNet width, and the views'
    crop and flip settings."""

    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    backbone_width: int
    view_crop_min_scale: float = 0.08
    view_flip: bool = True

    def backbone(self) -> ResNet18Backbone:
        """A fresh ResNet-18 of the configured width for this data (the ResNet methods' encoder)."""
        return ResNet18Backbone(self.backbone_width, self.mean, self.std)

    def views(self) -> StrongAugmentation:
        """The augmentation of the method's views: CLEL's strong augmentation with the configured crop and flip."""
        return StrongAugmentation(self.image_size, self.view_crop_min_scale, self.view_flip)


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

    Settings: ClassVar[type[MethodSettings]]  # its config table, in runner/config/methods.py
    augment: nn.Module  # the strong augmentation: the views of the loss, and the view the EBM's z is taken from

    @property
    def has_negatives(self) -> bool:
        """Whether the EBM's samples can serve as extra negatives (a fact of the method's settings)."""
        return self.Settings.has_negatives

    @classmethod
    def build(cls, settings: MethodSettings, context: BuildContext) -> "SelfSupervisedMethod":
        """The method, on CPU, from its settings."""
        raise NotImplementedError

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The unnormalised latent of images x in [0, 1] (with gradient)."""
        raise NotImplementedError

    def representation(self, x: torch.Tensor) -> torch.Tensor:
        """h(x): the encoder's features before any projection head (what a linear probe reads)."""
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
