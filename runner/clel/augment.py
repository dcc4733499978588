"""CLEL's strong augmentation, drawn per sample (kornia), for encoder views and replay-buffer samples."""

import kornia.augmentation as K
import torch
from torch import nn


class StrongAugmentation(nn.Module):
    """RandomResizedCrop(0.08-1, bicubic), ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8), grayscale p=0.2, flip."""

    def __init__(self, image_size: int):
        super().__init__()
        self.pipeline = K.AugmentationSequential(
            K.RandomResizedCrop((image_size, image_size), scale=(0.08, 1.0), resample="BICUBIC"),
            K.ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8),
            K.RandomGrayscale(p=0.2),
            K.RandomHorizontalFlip(),
            same_on_batch=False,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pipeline(x).clamp(0, 1)
