"""MoCo v2: momentum key encoder, a queue of normalised keys, InfoNCE; generated latents as extra columns."""

import torch
import torch.nn.functional as F
from torch import nn

from runner.clel.encoders.base import BuildContext, CRLOutput
from runner.clel.encoders.momentum import MomentumMethod
from runner.clel.networks import ResNet18Backbone, mlp
from runner.config.methods import MoCoSettings


def info_nce(
    queries: torch.Tensor, keys: torch.Tensor, queue: torch.Tensor, temperature: float, extra: torch.Tensor | None
) -> torch.Tensor:
    """-log softmax of the positive (query . key) against the queue's columns and the extra keys."""
    positives = (queries * keys).sum(1, keepdim=True)
    negatives = queries @ queue.T
    columns = [positives, negatives] if extra is None else [positives, negatives, queries @ extra.T]
    logits = torch.cat(columns, dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(len(queries), dtype=torch.long, device=queries.device))


class MoCo(MomentumMethod):
    """Symmetric MoCo v2 loss; the target (key) networks follow the online ones; both views' keys are enqueued."""

    Settings = MoCoSettings

    def __init__(
        self,
        backbone: ResNet18Backbone,
        augment: nn.Module,
        hidden: int,
        latent_dim: int,
        temperature: float,
        queue_size: int,
        momentum_start: float,
        momentum_end: float,
        projector_batch_norm: bool = False,
    ):
        projector = mlp([backbone.out_dim, hidden, latent_dim], nn.ReLU, batch_norm=projector_batch_norm)
        super().__init__(backbone, projector, momentum_start, momentum_end)
        self.augment = augment
        self.temperature = temperature
        self.latent_dim = latent_dim
        self.register_buffer("queue", F.normalize(torch.randn(queue_size, latent_dim), dim=1))
        self.register_buffer("queue_position", torch.zeros((), dtype=torch.long))

    @classmethod
    def build(cls, settings: MoCoSettings, context: BuildContext) -> "MoCo":
        s = settings
        return cls(
            context.backbone(),
            context.views(),
            s.projector_hidden,
            s.latent_dim,
            s.temperature,
            s.queue_size,
            s.momentum_start,
            s.momentum_end,
            s.projector_batch_norm,
        )

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Write keys at the queue position, wrapping around; the oldest keys are overwritten first."""
        size = self.queue.shape[0]
        keys = keys[-size:]
        index = (self.queue_position + torch.arange(len(keys), device=keys.device)) % size
        self.queue[index] = keys.to(self.queue.dtype)
        self.queue_position.copy_((self.queue_position + len(keys)) % size)

    def loss(self, x: torch.Tensor, generated_negatives: torch.Tensor | None = None) -> CRLOutput:
        views = self.augment(torch.cat([x, x]))
        queries = F.normalize(self.embed(views), dim=1)
        keys = F.normalize(self.target(views), dim=1)
        n = len(x)
        swapped = torch.cat([keys[n:], keys[:n]])
        extra = None if generated_negatives is None else F.normalize(generated_negatives, dim=1)
        loss = info_nce(queries, swapped, self.queue.clone(), self.temperature, extra)
        self.enqueue(keys)
        return CRLOutput(loss, queries[:n].detach())
