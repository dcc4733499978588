"""Whether stored runs' encoders learned: the same health every run records (docs/ENCODERS.md), recomputed.

    python scripts/latent_spread.py STORE RUN_ID [RUN_ID ...]
    python scripts/latent_spread.py --reference [--profile tiny] [--seed 0]   # raw pixels and untrained encoders
    python scripts/latent_spread.py --readouts STORE RUN_ID [RUN_ID ...]      # + other readouts of the same run

Per run (EMA encoder, eval mode, un-augmented images): the linear probe on h and on z (standardised features,
logistic regression fit on the training split, scored on the test split), the mean cosine between two test
images' z, and the same for the untrained encoder of the run's method and seed. --readouts adds other readouts
of the trained encoder, to ask whether a low probe on z is the readout's: z from the momentum target network
(BYOL, MoCo), z with BatchNorm's statistics recomputed on the un-augmented training images (in training they
are the augmented views'), and z read from the features h instead of the projection (each feature standardised
with the training images' mean and deviation, then normalised: what MAE's z is). The code is
runner/metrics/encoder_health.py's: this script has no probe of its own. Reads the run's config.json and
checkpoint as `python -m runner evaluate` does; writes nothing.
"""

import argparse
import copy

import numpy as np
import torch

from runner.clel.model import training_engine, untrained_encoder
from runner.config import ExperimentsFile
from runner.data import ImageData, load_dataset, to_unit_float
from runner.metrics.encoder_health import encoder_health, encoder_outputs, pixel_probe
from runner.metrics.probe import linear_probe, mean_pairwise_cosine
from runner.run.execute import restore
from runner.run.stored import stored_config
from runner.store import RunStore, open_store

ENCODER_ARMS = ("baseline", "moco", "byol", "mae")


@torch.no_grad()
def reference(profile: str, seed: int) -> None:
    """The pixels' probe, and each encoder arm's untrained encoder at this profile and seed."""
    experiments = ExperimentsFile()
    cfg = experiments.resolve("baseline", profile, seed)
    data = load_dataset(cfg.data.dataset, cfg.data.image_size)
    print(f"raw pixels: probe {pixel_probe(data):.3f}")
    for arm in ENCODER_ARMS:
        cfg = experiments.resolve(arm, profile, seed)
        health = encoder_health(untrained_encoder(cfg, data.mean, data.std), data)
        print(f"untrained {cfg.crl.method} encoder ({profile}, seed {seed}): {health.line()}")


def target_readout(method: torch.nn.Module) -> torch.nn.Module | None:
    """A copy of a momentum method whose latent comes from its target networks; None without them."""
    if not hasattr(method, "target_backbone"):
        return None
    target = copy.deepcopy(method)
    target.backbone, target.projector = target.target_backbone, target.target_projector
    return target


@torch.no_grad()
def clean_statistics_readout(method: torch.nn.Module, data: ImageData, batch: int = 64) -> torch.nn.Module:
    """A copy whose BatchNorm running statistics are the un-augmented training images' (a cumulative average)."""
    recalibrated = copy.deepcopy(method)
    for module in recalibrated.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None
    recalibrated.train()
    order = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(0))
    for first in range(0, len(order) - batch + 1, batch):
        recalibrated.latent(to_unit_float(data.train[order[first : first + batch]]))
    return recalibrated.eval()


def features_as_latent(method: torch.nn.Module, data: ImageData) -> str:
    """The probe and spread of z read from the standardised features h (the training images' statistics)."""
    train_h, _ = encoder_outputs(method, data.train)
    test_h, _ = encoder_outputs(method, data.test)
    mean, deviation = train_h.mean(0), train_h.std(0) + 1e-6

    def unit(h: np.ndarray) -> np.ndarray:
        z = (h - mean) / deviation
        return z / np.linalg.norm(z, axis=1, keepdims=True)

    probe = linear_probe(unit(train_h), data.train_labels.numpy(), unit(test_h), data.test_labels.numpy())
    return f"probe z {probe:.3f}, mean cos z {mean_pairwise_cosine(unit(test_h)):.3f}"


@torch.no_grad()
def report(store_uri: str, run_id: str, readouts: bool = False) -> None:
    run = RunStore(open_store(store_uri), run_id)
    cfg = stored_config(run, ExperimentsFile(), {"runtime.threads": 1})
    data = load_dataset(cfg.data.dataset, cfg.data.image_size)
    engine = training_engine(cfg, data, torch.device("cpu"))
    restore(run, engine, lambda _: None)
    if engine.model.ema_crl is None:
        print(f"{run_id}: no encoder")
        return
    trained = encoder_health(engine.model.ema_crl, data)
    untrained = encoder_health(untrained_encoder(cfg, data.mean, data.std), data)
    print(f"{run_id} (step {engine.step}): {trained.line()}; untrained: {untrained.line()}")
    if readouts:
        target = target_readout(engine.model.ema_crl)
        if target is not None:
            print(f"  z from the target networks: {encoder_health(target, data).line()}")
        recalibrated = clean_statistics_readout(engine.model.ema_crl, data)
        print(f"  BatchNorm statistics of the clean images: {encoder_health(recalibrated, data).line()}")
        if data.train_labels is not None and data.test_labels is not None:
            print(f"  z from the standardised features h: {features_as_latent(engine.model.ema_crl, data)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", action="store_true")
    parser.add_argument("--readouts", action="store_true", help="also other readouts of z")
    parser.add_argument("--profile", default="tiny")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("store", nargs="?")
    parser.add_argument("runs", nargs="*")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.reference:
        reference(args.profile, args.seed)
    for run_id in args.runs:
        report(args.store, run_id, args.readouts)


if __name__ == "__main__":
    main()
