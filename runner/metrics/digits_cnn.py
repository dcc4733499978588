"""Small CNN trained on the embedded digits; its penultimate activations are the FID features for digits."""

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from runner.data import DIGITS_SPLIT_SEED, DIGITS_TEST_FRACTION

FEATURE_DIM = 128
IMAGE_SHAPE = (3, 16, 16)
NUM_CLASSES = 10
FEATURES_NAME = "digits-cnn"
WEIGHTS_FILE = Path(__file__).resolve().parent.parent / "assets" / "digits_cnn.pt"


class DigitsCNN(nn.Module):
    """3x3 convs with two 2x2 max-pools, a 128-d linear layer (the features), ReLU, then 10 logits."""

    def __init__(self, dropout: float = 0.3) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
        )
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(64 * 4 * 4, FEATURE_DIM))
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(dropout), nn.Linear(FEATURE_DIM, NUM_CLASSES))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate pre-ReLU activations (B x FEATURE_DIM) of images in [0, 1], shape B x 3 x 16 x 16."""
        if x.ndim != 4 or tuple(x.shape[1:]) != IMAGE_SHAPE:
            raise ValueError(f"digits-cnn: expected images of shape B x 3 x 16 x 16, got {tuple(x.shape)}")
        return self.fc(self.conv(x - 0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (B x 10) of images in [0, 1], shape B x 3 x 16 x 16."""
        return self.head(self.features(x))


def resized_to_input(images: torch.Tensor) -> torch.Tensor:
    """Images of another square size bilinearly resized (antialiased) to the network's 16 x 16, as its features
    see every set: samples and reference statistics of a 32 x 32 digits run go through the same resize."""
    if images.ndim == 4 and images.shape[-2:] != IMAGE_SHAPE[1:] and images.shape[-1] == images.shape[-2]:
        return F.interpolate(images, size=IMAGE_SHAPE[1:], mode="bilinear", antialias=True, align_corners=False)
    return images


def load_digits_cnn(device: str | torch.device = "cpu") -> DigitsCNN:
    """The shipped digits CNN in eval mode with frozen parameters."""
    if not WEIGHTS_FILE.is_file():
        raise FileNotFoundError(f"digits-cnn: {WEIGHTS_FILE} missing; run scripts/train_digits_cnn.py")
    net = DigitsCNN()
    net.load_state_dict(torch.load(WEIGHTS_FILE, map_location="cpu", weights_only=True))
    net.to(device).eval()
    net.requires_grad_(False)
    return net


def digits_split_labels() -> tuple[torch.Tensor, torch.Tensor]:
    """Train and test labels (int64) in the order runner.data.load_digits gives the splits."""
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    target = sklearn_digits().target
    train_idx, test_idx = train_test_split(
        np.arange(len(target)),
        test_size=DIGITS_TEST_FRACTION,
        random_state=DIGITS_SPLIT_SEED,
        stratify=target,
    )
    labels = torch.from_numpy(target).long()
    return labels[np.sort(train_idx)], labels[np.sort(test_idx)]
