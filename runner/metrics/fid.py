"""FID: pytorch-fid's Frechet distance over features of a named feature network (DESIGN 3.6)."""

import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from pytorch_fid.fid_score import calculate_frechet_distance
from torch import nn

INCEPTION = "inception"
DIGITS_CNN = "digits-cnn"


class FeaturesUnavailable(Exception):
    """The feature network's weights cannot be had; FID is recorded as missing."""


def cache_dir() -> Path:
    """Where reference statistics and fetched weights are cached ($CLEL_CACHE, else ~/.cache/clel-runner)."""
    return Path(os.environ.get("CLEL_CACHE", Path.home() / ".cache" / "clel-runner"))


def statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of N x D features, as pytorch-fid computes them."""
    features = np.asarray(features, dtype=np.float64)
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)), computed by pytorch-fid."""
    return float(calculate_frechet_distance(mu1, sigma1, mu2, sigma2))


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


def _inception(weights: str) -> nn.Module:
    from pytorch_fid.inception import FID_WEIGHTS_URL, InceptionV3

    block = [InceptionV3.BLOCK_INDEX_BY_DIM[2048]]
    if not weights:
        try:
            return InceptionV3(block)
        except Exception as err:  # torch.hub raises URLError, OSError, HTTPError... offline
            raise FeaturesUnavailable(f"pytorch-fid Inception weights could not be downloaded ({err})") from None
    hub = cache_dir() / "hub"
    target = hub / "checkpoints" / FID_WEIGHTS_URL.rsplit("/", 1)[-1]
    target.parent.mkdir(parents=True, exist_ok=True)
    if weights.startswith("s3://"):
        from runner.store import download_object

        try:
            download_object(weights, target)
        except Exception as err:
            raise FeaturesUnavailable(f"Inception weights {weights} could not be fetched ({err})") from None
    elif Path(weights).is_file():
        if not target.exists() or Path(weights).resolve() != target.resolve():
            shutil.copyfile(weights, target)
    else:
        raise FeaturesUnavailable(f"Inception weights {weights}: no such file")
    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(hub))  # pytorch-fid takes no path: it loads from the hub cache, without download
    try:
        return InceptionV3(block)
    except Exception as err:
        raise FeaturesUnavailable(f"Inception weights {weights} are not pytorch-fid's FID weights ({err})") from None
    finally:
        torch.hub.set_dir(previous)


def load_feature_extractor(name: str, device: torch.device, inception_weights: str = "") -> FeatureExtractor:
    """The FID feature network by name: 'inception' (pytorch-fid, 2048-d pool) or 'digits-cnn' (shipped)."""
    if name == DIGITS_CNN:
        from runner.metrics.digits_cnn import load_digits_cnn

        return FeatureExtractor(name, load_digits_cnn(device).features, device)
    model = _inception(inception_weights).to(device).eval()
    return FeatureExtractor(name, lambda x: model(x)[0], device)


def reference_statistics(
    key: str, images: torch.Tensor, extractor: FeatureExtractor, batch_size: int = 500
) -> tuple[np.ndarray, np.ndarray]:
    """Statistics of a reference split (images in [0, 1]), cached per dataset/split/feature network."""
    digest = hashlib.sha256(images.cpu().numpy().tobytes()).hexdigest()[:12]
    path = cache_dir() / "fid_stats" / f"{key}-{extractor.name}-{digest}.npz"
    if path.is_file():
        with np.load(path) as cached:
            return cached["mu"], cached["sigma"]
    mu, sigma = statistics(extractor(images, batch_size))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, mu=mu, sigma=sigma)
    tmp.replace(path)
    return mu, sigma
