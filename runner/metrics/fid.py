"""FID: pytorch-fid's Frechet distance over the features of a named network, and cached reference statistics."""

import contextlib
import hashlib
import io
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from pytorch_fid.fid_score import calculate_frechet_distance

from runner.atomic_file import write_atomic
from runner.cache import cache_dir
from runner.metrics.inception import FeaturesUnavailable, load_inception

INCEPTION = "inception"
DIGITS_CNN = "digits-cnn"


def statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of N x D features, as pytorch-fid computes them."""
    features = np.asarray(features, dtype=np.float64)
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, notes: list[str] | None = None
) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)), computed by pytorch-fid.

    scipy's warning that S1 S2 is singular (its square root, and so the FID, is then less accurate) and
    pytorch-fid's printed eps retry are caught; one line saying so goes into `notes` when given.
    """
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(io.StringIO()) as printed:
        warnings.simplefilter("always")
        value = float(calculate_frechet_distance(mu1, sigma1, mu2, sigma2))
    words = ("singular", "ill-conditioned")
    singular = any(word in f"{w.message}".lower() for w in caught for word in words) or "singular" in printed.getvalue()
    if singular and notes is not None:
        notes.append(
            f"FID {value:.3f}: the covariance product is singular (too few distinct samples or collapsed features), "
            "so its matrix square root and the FID are less accurate"
        )
    return value


class FeatureExtractor:
    """A frozen network mapping images in [0, 1] (B x 3 x H x W) to feature vectors."""

    def __init__(self, name: str, network: Callable[[torch.Tensor], torch.Tensor], device: torch.device):
        self.name, self.network, self.device = name, network, device

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, batch_size: int = 500) -> np.ndarray:
        chunks = [
            self.network(images[i : i + batch_size].to(self.device)).flatten(1).double().cpu()
            for i in range(0, len(images), batch_size)
        ]
        return torch.cat(chunks).numpy()


def load_feature_extractor(name: str, device: torch.device, inception_weights: Path | None = None) -> FeatureExtractor:
    """The FID feature network: 'digits-cnn' (shipped) or 'inception' from a verified weights file.

    For Inception, pass the file fetch_inception_weights() returned (it checked the sha256).
    """
    if name == DIGITS_CNN:
        from runner.metrics.digits_cnn import load_digits_cnn, resized_to_input

        net = load_digits_cnn(device)
        return FeatureExtractor(name, lambda x: net.features(resized_to_input(x)), device)
    if inception_weights is None:
        raise FeaturesUnavailable("no verified Inception weights file given")
    model = load_inception(inception_weights).to(device).eval()
    return FeatureExtractor(name, lambda x: model(x)[0], device)


def _plausible(mu: np.ndarray, sigma: np.ndarray) -> bool:
    """Whether cached statistics have the form statistics() gives: float mean, square covariance, finite."""
    return (
        mu.dtype.kind == "f"
        and sigma.dtype.kind == "f"
        and mu.ndim == 1
        and sigma.shape == (len(mu), len(mu))
        and bool(np.isfinite(mu).all() and np.isfinite(sigma).all())
    )


def reference_statistics(
    key: str, images: torch.Tensor, extractor: FeatureExtractor, batch_size: int = 500
) -> tuple[np.ndarray, np.ndarray]:
    """Statistics of a reference split (images in [0, 1]), cached per dataset/split/feature network."""
    digest = hashlib.sha256(images.cpu().numpy().tobytes()).hexdigest()[:12]
    path = cache_dir() / "fid_stats" / f"{key}-{extractor.name}-{digest}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as cached:
                mu, sigma = cached["mu"], cached["sigma"]
            if _plausible(mu, sigma):
                return mu, sigma
        except Exception:  # a damaged cache file is recomputed, never trusted
            pass
        path.unlink(missing_ok=True)
    mu, sigma = statistics(extractor(images, batch_size))
    buffer = io.BytesIO()
    np.savez(buffer, mu=mu, sigma=sigma)
    write_atomic(path, buffer.getvalue())
    return mu, sigma
