"""BYOL: online projector + predictor regress a momentum target's projection; no negatives."""

import torch
import torch.nn.functional as F
from torch import nn

from runner.clel.encoders.base import BuildContext, CRLOutput
from runner.clel.encoders.momentum import MomentumMethod
from runner.clel.networks import ResNet18Backbone, mlp
from runner.config.methods import BYOLSettings


def byol_loss(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """2 - 2 cos(prediction, target), averaged over the batch."""
    return (2 - 2 * F.cosine_similarity(predictions, targets.detach(), dim=1)).mean()


class BYOL(MomentumMethod):
    """Symmetric BYOL loss; the target network follows the online one by a cosine momentum schedule."""

    Settings = BYOLSettings

    def __init__(
        self,
        backbone: ResNet18Backbone,
        augment: nn.Module,
        projector_hidden: int,
        predictor_hidden: int,
        latent_dim: int,
        momentum_start: float,
        momentum_end: float,
    ):
        projector = mlp([backbone.out_dim, projector_hidden, latent_dim], nn.ReLU, batch_norm=True)
        predictor = mlp([latent_dim, predictor_hidden, latent_dim], nn.ReLU, batch_norm=True)
        super().__init__(backbone, projector, momentum_start, momentum_end)
        self.predictor = predictor
        self.augment = augment
        self.latent_dim = latent_dim

    @classmethod
    def build(cls, settings: BYOLSettings, context: BuildContext) -> "BYOL":
        s = settings
        return cls(
            context.backbone(),
            context.views(),
            s.projector_hidden,
            s.predictor_hidden,
            s.latent_dim,
            s.momentum_start,
            s.momentum_end,
        )

    def loss(self, x: torch.Tensor, generated_negatives: torch.Tensor | None = None) -> CRLOutput:
        views = self.augment(torch.cat([x, x]))
        projections = self.embed(views)
        predictions = self.predictor(projections)
        targets = self.target(views)
        n = len(x)
        swapped = torch.cat([targets[n:], targets[:n]])
        loss = 2 * byol_loss(predictions, swapped)  # the sum of both directions, each a batch mean
        return CRLOutput(loss, F.normalize(projections[:n].detach(), dim=1))
