"""MoCo v2: momentum key encoder, a queue of normalised keys, InfoNCE; generated latents as extra columns."""

import copy

import torch
import torch.nn.functional as F
from torch import nn

from runner.clel.crl.base import CRLOutput, SelfSupervisedMethod
from runner.clel.crl.momentum import cosine_momentum, momentum_update
from runner.clel.networks import ResNet18Backbone, mlp


def info_nce(
    queries: torch.Tensor, keys: torch.Tensor, queue: torch.Tensor, temperature: float, extra: torch.Tensor | None
) -> torch.Tensor:
    """-log softmax of the positive (query . key) against the queue's columns and the extra keys."""
    positives = (queries * keys).sum(1, keepdim=True)
    negatives = queries @ queue.T
    columns = [positives, negatives] if extra is None else [positives, negatives, queries @ extra.T]
    logits = torch.cat(columns, dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(len(queries), dtype=torch.long, device=queries.device))


class MoCo(SelfSupervisedMethod):
    """Symmetric MoCo v2 loss; both views' keys enter the queue after each step."""

    has_negatives = True

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
    ):
        super().__init__()
        self.backbone = backbone
        self.projector = mlp([backbone.out_dim, hidden, latent_dim], nn.ReLU)
        self.key_backbone = copy.deepcopy(backbone).requires_grad_(False)
        self.key_projector = copy.deepcopy(self.projector).requires_grad_(False)
        self.augment = augment
        self.temperature = temperature
        self.latent_dim = latent_dim
        self.momentum_start, self.momentum_end = momentum_start, momentum_end
        self.momentum = momentum_start
        self.register_buffer("queue", F.normalize(torch.randn(queue_size, latent_dim), dim=1))
        self.register_buffer("queue_position", torch.zeros((), dtype=torch.long))

    def query(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.projector(self.backbone(x)), dim=1)

    @torch.no_grad()
    def key(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.key_projector(self.key_backbone(x)), dim=1)

    @torch.no_grad()
    def latent(self, x: torch.Tensor) -> torch.Tensor:
        return self.query(x)

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
        queries = self.query(views)
        keys = self.key(views)
        n = len(x)
        swapped = torch.cat([keys[n:], keys[:n]])
        extra = None if generated_negatives is None else F.normalize(generated_negatives, dim=1)
        loss = info_nce(queries, swapped, self.queue.clone(), self.temperature, extra)
        self.enqueue(keys)
        return CRLOutput(loss, queries[:n].detach())

    def on_step(self, progress: float) -> None:
        self.momentum = cosine_momentum(self.momentum_start, self.momentum_end, progress)
        momentum_update(self.key_backbone, self.backbone, self.momentum)
        momentum_update(self.key_projector, self.projector, self.momentum)
