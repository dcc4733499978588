"""Whether a stored run's encoder collapsed: the spread of its latents z over the test digits.

    python scripts/latent_spread.py STORE RUN_ID [RUN_ID ...]
    python scripts/latent_spread.py --reference      # the same numbers for raw pixels and an untrained encoder

Per run (EMA encoder, un-augmented test images): the mean cosine between the latents of two different images
(1.0: every image has the same z, a collapsed encoder), the effective rank of the latents (exp of the entropy of
the normalised singular values; the latent's dimension at most), and a linear probe's test accuracy on the digit
labels (logistic regression on half of the test split, scored on the other half; chance is about 0.1). Reads
the run's config.json and checkpoint as `python -m runner evaluate` does; writes nothing.
"""

import sys

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from torch.nn.utils import parametrize

from runner.clel.model import training_engine
from runner.config import ExperimentsFile
from runner.data import DIGITS_SPLIT_SEED, DIGITS_TEST_FRACTION, load_dataset, to_unit_float
from runner.run import restore
from runner.store import RunStore, open_store
from runner.stored_run import stored_config


def digits_test_labels() -> np.ndarray:
    """The labels of runner.data's digits test split (the same stratified split, in the same order)."""
    target = load_digits().target
    _, test = train_test_split(
        np.arange(len(target)), test_size=DIGITS_TEST_FRACTION, random_state=DIGITS_SPLIT_SEED, stratify=target
    )
    return target[np.sort(test)]


def effective_rank(latents: np.ndarray) -> float:
    singular = np.linalg.svd(latents - latents.mean(0), compute_uv=False)
    p = singular / singular.sum()
    return float(np.exp(-(p[p > 0] * np.log(p[p > 0])).sum()))


def spread_line(name: str, z: np.ndarray) -> str:
    """Mean cosine between two images' latents, effective rank, linear probe accuracy on the digit labels."""
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    cosines = z @ z.T
    mean_cos = (cosines.sum() - np.trace(cosines)) / (len(z) * (len(z) - 1))
    labels = digits_test_labels()
    half = len(z) // 2
    accuracy = LogisticRegression(max_iter=2000).fit(z[:half], labels[:half]).score(z[half:], labels[half:])
    return (
        f"{name}: mean cosine between images {mean_cos:.4f}, effective rank {effective_rank(z):.1f} of "
        f"{z.shape[1]}, linear probe accuracy {accuracy:.3f}"
    )


@torch.no_grad()
def reference() -> None:
    """Raw pixels (centred), and the tiny profile's SimCLR encoder as initialised (seed 0), for scale."""
    cfg = ExperimentsFile().resolve("baseline", "tiny", 0)
    data = load_dataset("digits", cfg.data.image_size)
    pixels = to_unit_float(data.test).flatten(1).double().numpy()
    print(spread_line("raw pixels (centred)", pixels - pixels.mean(0)))
    engine = training_engine(cfg, data, torch.device("cpu"))
    crl = engine.model.ema_crl
    z = torch.cat([crl.latent(to_unit_float(data.test[i : i + 500])) for i in range(0, len(data.test), 500)])
    print(spread_line("untrained SimCLR encoder (tiny, seed 0)", z.double().numpy()))


@torch.no_grad()
def report(store_uri: str, run_id: str) -> None:
    run = RunStore(open_store(store_uri), run_id)
    cfg = stored_config(run, ExperimentsFile(), {"runtime.threads": 1})
    data = load_dataset(cfg.data.dataset, cfg.data.image_size)
    engine = training_engine(cfg, data, torch.device("cpu"))
    restore(run, engine, lambda _: None)
    crl = engine.model.ema_crl
    if crl is None:
        print(f"{run_id}: no encoder")
        return
    with parametrize.cached():
        z = torch.cat([crl.latent(to_unit_float(data.test[i : i + 500])) for i in range(0, len(data.test), 500)])
    print(spread_line(f"{run_id} (step {engine.step})", z.double().numpy()))


if __name__ == "__main__":
    torch.set_num_threads(1)
    if sys.argv[1:] == ["--reference"]:
        reference()
    for run_id in sys.argv[2:]:
        report(sys.argv[1], run_id)
