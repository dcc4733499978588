"""Whether stored runs' encoders learned: the same health every run records (docs/ENCODERS.md), recomputed.

    python scripts/latent_spread.py STORE RUN_ID [RUN_ID ...]
    python scripts/latent_spread.py --reference [--profile tiny] [--seed 0]   # raw pixels and untrained encoders

Per run (EMA encoder, eval mode, un-augmented images): the linear probe on h and on z (standardised features,
logistic regression fit on the training split, scored on the test split), the mean cosine between two test
images' z, and the same for the untrained encoder of the run's method and seed. The code is
runner/metrics/encoder_health.py's: this script has no probe of its own. Reads the run's config.json and
checkpoint as `python -m runner evaluate` does; writes nothing.
"""

import argparse

import torch

from runner.clel.model import training_engine, untrained_encoder
from runner.config import ExperimentsFile
from runner.data import load_dataset
from runner.metrics.encoder_health import encoder_health, pixel_probe
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


@torch.no_grad()
def report(store_uri: str, run_id: str) -> None:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", action="store_true")
    parser.add_argument("--profile", default="tiny")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("store", nargs="?")
    parser.add_argument("runs", nargs="*")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.reference:
        reference(args.profile, args.seed)
    for run_id in args.runs:
        report(args.store, run_id)


if __name__ == "__main__":
    main()
