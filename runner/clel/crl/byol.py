"""BYOL: online projector + predictor regress a momentum target's projection; no negatives."""

import copy

import torch
import torch.nn.functional as F
from torch import nn

from runner.clel.crl.base import CRLOutput, SelfSupervisedMethod
from runner.clel.crl.momentum import cosine_momentum, momentum_update
from runner.clel.networks import ResNet18Backbone, mlp


def byol_loss(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """2 - 2 cos(prediction, target), averaged over the batch."""
    return (2 - 2 * F.cosine_similarity(predictions, targets.detach(), dim=1)).mean()


class BYOL(SelfSupervisedMethod):
    """Symmetric BYOL loss; the target network follows the online one by a cosine momentum schedule."""

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
        super().__init__()
        self.backbone = backbone
        self.projector = mlp([backbone.out_dim, projector_hidden, latent_dim], nn.ReLU, batch_norm=True)
        self.predictor = mlp([latent_dim, predictor_hidden, latent_dim], nn.ReLU, batch_norm=True)
        self.target_backbone = copy.deepcopy(backbone).requires_grad_(False)
        self.target_projector = copy.deepcopy(self.projector).requires_grad_(False)
        self.augment = augment
        self.latent_dim = latent_dim
        self.momentum_start, self.momentum_end = momentum_start, momentum_end
        self.momentum = momentum_start

    @torch.no_grad()
    def latent(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.projector(self.backbone(x)), dim=1)

    def loss(self, x: torch.Tensor, generated_negatives: torch.Tensor | None = None) -> CRLOutput:
        views = self.augment(torch.cat([x, x]))
        projections = self.projector(self.backbone(views))
        predictions = self.predictor(projections)
        with torch.no_grad():
            targets = self.target_projector(self.target_backbone(views))
        n = len(x)
        swapped = torch.cat([targets[n:], targets[:n]])
        loss = 2 * byol_loss(predictions, swapped)  # the sum of both directions, each a batch mean
        return CRLOutput(loss, F.normalize(projections[:n].detach(), dim=1))

    def on_step(self, progress: float) -> None:
        self.momentum = cosine_momentum(self.momentum_start, self.momentum_end, progress)
        momentum_update(self.target_backbone, self.backbone, self.momentum)
        momentum_update(self.target_projector, self.projector, self.momentum)
