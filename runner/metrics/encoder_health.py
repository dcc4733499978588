"""An encoder's health: linear probes on its features h and latents z, the spread of z, and the method's loss
against its chance level (docs/ENCODERS.md has the protocol and the collapse rule).

Every quantity is taken on un-augmented images with the encoder in eval mode (BatchNorm's running statistics):
the EMA encoder a run evaluates, or an untrained encoder built from the run's seed for comparison.
"""

import math
from dataclasses import dataclass

import numpy as np
import torch

from runner.clel.encoders import SelfSupervisedMethod
from runner.config import RunConfig
from runner.data import ImageData, to_unit_float
from runner.metrics.probe import linear_probe, mean_pairwise_cosine


@dataclass(frozen=True)
class EncoderHealth:
    """Probe accuracies on h and z (None without labels) and the mean pairwise cosine of z, on the test split."""

    probe_h: float | None
    probe_z: float | None
    mean_cos_z: float

    def line(self) -> str:
        def text(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.3f}"

        return f"probe h {text(self.probe_h)}, probe z {text(self.probe_z)}, mean cos z {self.mean_cos_z:.3f}"


@torch.no_grad()
def encoder_outputs(
    method: SelfSupervisedMethod, images: torch.Tensor, batch: int = 500, device: torch.device | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(h, z) of uint8 images, in eval mode (the module's mode is restored), float64 arrays."""
    device = device or next(method.parameters()).device
    was_training = method.training
    method.eval()
    features, latents = [], []
    try:
        for first in range(0, len(images), batch):
            x = to_unit_float(images[first : first + batch]).to(device)
            h = method.representation(x)
            features.append(h.double().cpu())
            latents.append(method.latent(x).double().cpu())
    finally:
        method.train(was_training)
    return torch.cat(features).numpy(), torch.cat(latents).numpy()


def encoder_health(method: SelfSupervisedMethod, data: ImageData, batch: int = 500) -> EncoderHealth:
    """Probes on h and z (fit on the training split, scored on the test split) and the mean cosine of z."""
    test_h, test_z = encoder_outputs(method, data.test, batch)
    probe_h = probe_z = None
    if data.train_labels is not None and data.test_labels is not None:
        train_h, train_z = encoder_outputs(method, data.train, batch)
        train_y, test_y = data.train_labels.numpy(), data.test_labels.numpy()
        probe_h = linear_probe(train_h, train_y, test_h, test_y)
        probe_z = linear_probe(train_z, train_y, test_z, test_y)
    return EncoderHealth(probe_h, probe_z, mean_pairwise_cosine(test_z))


def pixel_probe(data: ImageData) -> float | None:
    """The probe on raw pixels (flattened, in [0, 1]): what an encoder's features should at least match."""
    if data.train_labels is None or data.test_labels is None:
        return None
    train = to_unit_float(data.train).flatten(1).double().numpy()
    test = to_unit_float(data.test).flatten(1).double().numpy()
    return linear_probe(train, data.train_labels.numpy(), test, data.test_labels.numpy())


def chance_loss(cfg: RunConfig, negatives: int | None = None) -> float | None:
    """The method's loss when its encoder carries no information about the image, None where none exists.

    SimCLR: every one of the 2B - 1 other views (and the extra negatives) equally likely, log(2B - 1 + extra).
    MoCo: the positive against the queue (and the extra negatives), log(1 + K + extra). MAE: predicting each
    masked patch's mean, on targets standardised per patch, (P - 1) / P for P values per patch. BYOL: none (a
    collapsed encoder reaches loss 0). `negatives` defaults to the batch's generated negatives when used.
    """
    method = cfg.crl.method
    if negatives is None:
        negatives = cfg.train.batch_size if cfg.crl.generated_negatives is True else 0
    if method == "simclr":
        return math.log(2 * cfg.train.batch_size - 1 + negatives)
    if method == "moco":
        return math.log(1 + cfg.crl.moco.queue_size + negatives)
    if method == "mae":
        values = cfg.crl.mae.patch_size**2 * 3
        return (values - 1) / values
    return None
