"""SimCLR: NT-Xent over 2N views, with the EBM samples' latents as extra negative keys."""

import torch
import torch.nn.functional as F
from torch import nn

from runner.clel.encoders.base import BuildContext, CRLOutput, SelfSupervisedMethod
from runner.clel.networks import ResNet18Backbone, mlp
from runner.config.methods import SimCLRSettings


def nt_xent(queries: torch.Tensor, temperature: float, extra_keys: torch.Tensor | None = None) -> torch.Tensor:
    """NT-Xent over 2N anchors (rows i and i+N are positives), extra keys as negatives for every anchor."""
    z = F.normalize(queries, dim=1)
    n = z.shape[0] // 2
    keys = z if extra_keys is None else torch.cat([z, F.normalize(extra_keys, dim=1)])
    logits = z @ keys.T / temperature
    logits[:, : 2 * n].fill_diagonal_(float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return F.cross_entropy(logits, targets)


class SimCLR(SelfSupervisedMethod):
    """ResNet-18 backbone + projector (hidden-BN-ReLU-latent), NT-Xent."""

    Settings = SimCLRSettings

    def __init__(
        self, backbone: ResNet18Backbone, augment: nn.Module, hidden: int, latent_dim: int, temperature: float
    ):
        super().__init__()
        self.backbone = backbone
        self.projector = mlp([backbone.out_dim, hidden, latent_dim], nn.ReLU, batch_norm=True)
        self.augment = augment
        self.temperature = temperature
        self.latent_dim = latent_dim

    @classmethod
    def build(cls, settings: SimCLRSettings, context: BuildContext) -> "SimCLR":
        backbone = context.backbone()
        return cls(backbone, context.views(), settings.projector_hidden, settings.latent_dim, settings.temperature)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.projector(self.backbone(x))

    def representation(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def loss(self, x: torch.Tensor, generated_negatives: torch.Tensor | None = None) -> CRLOutput:
        views = self.augment(torch.cat([x, x]))
        y = self.embed(views)
        loss = nt_xent(y, self.temperature, generated_negatives)
        return CRLOutput(loss, F.normalize(y[: len(x)].detach(), dim=1))
