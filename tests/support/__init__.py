"""What every tier shares: the repository root, and the one small tiny-profile configuration (in-process and CLI).

The helpers around them live beside this module: runs (the CLI in a subprocess), cli (the CLI in this process),
kube (the fake Kubernetes API server and experiments.toml with a chosen [cluster]), results (made-up result.json
bodies), bad_config (a minimal experiments.toml of the bad-input tests' own) and flaky_proxy (a faulty S3 link).
"""

import json
from pathlib import Path
from typing import Any

from runner.config import ExperimentsFile, RunConfig

ROOT = Path(__file__).resolve().parents[2]  # the repository

# The tiny profile with a short evaluation and frequent checkpoints: a run of 40 iterations takes seconds.
SMALL_SETTINGS: dict[str, Any] = {
    "eval.fid_samples": 64,
    "eval.fid_sgld_passes": 1,
    "eval.batch_size": 64,
    "eval.sample_grid": 16,
    "sgld.steps": 5,
    "sgld.buffer_size": 200,
    "train.batch_size": 16,
    "crl.pretrain_iterations": 0,  # the profile's encoder-only steps are tested on their own (test_pretraining.py)
    "runtime.checkpoint_every": 10,
    "runtime.progress": False,
    "runtime.threads": 1,
}
# the same settings as `--set` for a run in a subprocess: "eval.fid_samples=64 ... runtime.threads=1"
SMALL = " ".join(f"{key}={json.dumps(value)}" for key, value in SMALL_SETTINGS.items())


def tiny_cfg(
    experiment: str = "baseline",
    seed: int = 0,
    overrides: dict[str, Any] | None = None,
    *,
    profile: str = "tiny",
    smoke: bool = False,
    config: str | Path | None = None,
    **settings: Any,
) -> RunConfig:
    """The resolved config of a small run: the repository's experiments.toml (or `config`) at the tiny profile,
    SMALL_SETTINGS, then `overrides` (dotted keys) and `settings` (`__` for the dots: `sgld__steps=2`).

    Every setting is an override, so the run id names those that differ from the file's own (baseline-tiny-g...-s0)
    and is the id `local --set SMALL ...` gives the same run."""
    chosen = SMALL_SETTINGS | (overrides or {}) | {key.replace("__", "."): value for key, value in settings.items()}
    experiments = ExperimentsFile(config or ROOT / "experiments.toml")
    return experiments.resolve(experiment, profile, seed, chosen, smoke)
