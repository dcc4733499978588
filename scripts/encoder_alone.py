"""A self-supervised method trained alone (no EBM) on a profile's data: does its encoder learn?

    python scripts/encoder_alone.py --exp moco --profile tiny --steps 600 [--set KEY=VALUE ...] [--fake-negatives]

Builds the experiment's method with its settings (the run's config, --set applied), trains it for --steps steps on
the training split with the run's batches and the method's optimizer and schedule, and prints the loss over the
first and last 20 steps against the method's chance level, then the encoder's health (the same probe and spread
that every run records: runner/metrics/encoder_health.py) at step 0 and at the end. --fake-negatives adds 64
generated negatives placed at the batch's mean latent (what a collapsed EBM's samples give the encoder).
"""

import argparse
import time

import torch
import torch.nn.functional as F

from runner.clel.engine import Batches, build_optimizer, seed_everything
from runner.clel.model import build_crl
from runner.config import ExperimentsFile
from runner.config.overrides import parse_overrides
from runner.data import load_dataset
from runner.metrics.encoder_health import chance_loss, encoder_health


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exp", default="baseline")
    parser.add_argument("--profile", default="tiny")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument("--fake-negatives", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = ExperimentsFile().resolve(args.exp, args.profile, args.seed, parse_overrides(args.set) or None)
    data = load_dataset(cfg.data.dataset, cfg.data.image_size)
    seed_everything(cfg.seed)
    method = build_crl(cfg, data.mean, data.std)
    optimizer, schedule = build_optimizer(
        list(method.parameters()), cfg.crl.optimizer, cfg.train.batch_size, args.steps
    )
    batches = Batches(data.train, cfg.train.batch_size, cfg.seed, cfg.data.dequantize, channels_last=False)
    before = encoder_health(method, data)
    losses, started = [], time.perf_counter()
    for step in range(args.steps):
        method.train()
        x = batches(step)
        negatives = None
        if args.fake_negatives and method.has_negatives:
            centre = method.latent(method.augment(x)).mean(0, keepdim=True)
            negatives = F.normalize(centre, dim=1).expand(64, -1)
        loss = method.loss(x, negatives).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        method.on_step((step + 1) / args.steps)
        losses.append(loss.item())
    after = encoder_health(method, data)
    chance = chance_loss(cfg, negatives=64 if args.fake_negatives else 0)
    head, tail = sum(losses[:20]) / 20, sum(losses[-20:]) / 20
    chance_text = "none" if chance is None else f"{chance:.3f}"
    print(f"{args.exp} {' '.join(args.set)}: {args.steps} steps in {time.perf_counter() - started:.0f} s")
    print(f"  loss first 20 {head:.3f} -> last 20 {tail:.3f} (chance {chance_text})")
    print(f"  step 0: {before.line()}")
    print(f"  end:    {after.line()}")


if __name__ == "__main__":
    main()
