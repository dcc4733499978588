"""Small torch modules the method tests wrap around a method's parts."""

import torch
from torch import nn


class RecordingAugment(nn.Module):
    """Wraps an augmentation and keeps its last output."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner
        self.last: torch.Tensor | None = None

    def forward(self, x):
        self.last = self.inner(x)
        return self.last
