"""CLEL's strong augmentation, drawn per sample (kornia), for encoder views and replay-buffer samples."""

import kornia.augmentation as K
import torch
from torch import nn


class StrongAugmentation(nn.Module):
    """RandomResizedCrop(0.08-1, bicubic), colour jiggle (0.4, 0.4, 0.4, 0.1, p=0.8), grayscale p=0.2, flip.

    As the reference implementation (kornia 0.6.3's ColorJitter, which kornia >= 0.7 calls ColorJiggle:
    additive brightness, contrast scaling the raw values, saturation and hue in HSV) and without a final clamp:
    values the bicubic crop pushes outside [0, 1] stay there unless the colour step runs (docs/FIDELITY.md).
    """

    def __init__(self, image_size: int):
        super().__init__()
        self.pipeline = K.AugmentationSequential(
            K.RandomResizedCrop((image_size, image_size), scale=(0.08, 1.0), resample="BICUBIC"),
            K.ColorJiggle(0.4, 0.4, 0.4, 0.1, p=0.8),
            K.RandomGrayscale(p=0.2),
            K.RandomHorizontalFlip(),
            same_on_batch=False,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pipeline(x)
