"""Why one seed's FID is far from its siblings': the FID of every checkpoint a run kept, and of its last one
under other evaluation noise.

    python scripts/fid_by_checkpoint.py STORE RUN_ID [RUN_ID ...] [--eval-seeds 3]

Per run: FID of each checkpoint named by ckpt/LATEST (newest and its history; each verified by its sha256), with
the run's own evaluation noise (torch seed = seed + 1, as `local` evaluates), then the newest checkpoint again
with --eval-seeds - 1 other evaluation seeds. The spread over checkpoints says how much the model moves between
saves; the spread over evaluation seeds says how much of a FID is the evaluation's own draw. Reads the run's
config.json as `python -m runner evaluate` does; writes nothing.
"""

import sys

import torch

from runner.clel.model import training_engine
from runner.config import ExperimentsFile
from runner.data import load_dataset, ood_sets
from runner.run.checkpoints import restore
from runner.run.evaluate import evaluate
from runner.run.inputs import fid_weights
from runner.run.stored import stored_config
from runner.store import RunStore, open_store


def fid_of(engine, data, ood, weights, seed: int) -> float:
    """FID of the engine's EMA model with evaluation noise drawn from torch seed `seed + 1`."""
    engine.model.cfg = engine.model.cfg.model_copy(update={"seed": seed})
    return evaluate(engine.model, data, ood, lambda _: None, weights).fid


def report(store_uri: str, run_id: str, eval_seeds: int) -> None:
    run = RunStore(open_store(store_uri), run_id)
    cfg = stored_config(run, ExperimentsFile(), {"runtime.threads": 1, "runtime.progress": False})
    data = load_dataset(cfg.data.dataset, cfg.data.image_size)
    ood = ood_sets(data, cfg.data.ood, [])
    weights = fid_weights(cfg, print)
    engine = training_engine(cfg, data, torch.device("cpu"))
    steps = []
    for step, payload in run.kept_checkpoints():
        restore(engine, payload)
        steps.append(f"step {step}: {fid_of(engine, data, ood, weights, cfg.seed):.1f}")
    others = [f"{fid_of(engine, data, ood, weights, cfg.seed + 1000 * k):.1f}" for k in range(1, eval_seeds)]
    print(f"{run_id}: FID by checkpoint {', '.join(steps)}; the last, other evaluation noise: {', '.join(others)}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    args = sys.argv[1:]
    count = 3
    if "--eval-seeds" in args:
        at = args.index("--eval-seeds")
        count = int(args[at + 1])
        del args[at : at + 2]
    for run_id in args[1:]:
        report(args[0], run_id, count)
