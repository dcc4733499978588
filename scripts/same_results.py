"""Same results before and after a change that must not change them: a fixed set of short runs (every experiment
x seeds 0 and 1, a few iterations each), then a byte-for-byte comparison of their result.json metrics and their
last checkpoints' tensors.

    python scripts/same_results.py make STORE          # run the set into STORE (a fresh directory)
    python scripts/same_results.py compare BEFORE AFTER

Runs are matched by experiment and seed (not by run id, whose format may change); checkpoint tensors by their
path in the checkpoint, or, when the checkpoint's layout changed, as a multiset of (dtype, shape, bytes).
"""

import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import torch

from runner.layout import LATEST, RESULT_FILE

EXPERIMENTS = ("baseline", "byol", "moco", "mae", "no_norm_split", "plain_ebm")
SEEDS = (0, 1)
ITERATIONS = 4
SMALL = (
    "eval.fid_samples=64 eval.fid_sgld_passes=1 eval.batch_size=64 eval.sample_grid=16 sgld.steps=5 "
    "sgld.buffer_size=200 train.batch_size=16 runtime.checkpoint_every=2 runtime.progress=false runtime.threads=1"
)
METRICS = ("fid", "fid_init", "auroc", "collapsed", "iterations", "config_hash")


def make(store: str) -> None:
    for experiment in EXPERIMENTS:
        for seed in SEEDS:
            command = [sys.executable, "-m", "runner", "local", "--exp", experiment, "--seed", str(seed)]
            command += ["--iterations", str(ITERATIONS), "--store", store, "--set", SMALL]
            subprocess.run(command, check=True, capture_output=True)
            print(f"made {experiment} seed {seed}", flush=True)


def runs(store: Path) -> dict[tuple[str, int], Path]:
    found = {}
    for result in store.glob("*/result.json"):
        data = json.loads(result.read_text())
        found[(data["experiment"], data["seed"])] = result.parent
    return found


def tensors(value, path: str = "") -> dict[str, torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return {path: value}
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list | tuple) else []
    return {k: t for key, item in items for k, t in tensors(item, f"{path}/{key}").items()}


def fingerprint(t: torch.Tensor) -> str:
    return f"{t.dtype}{tuple(t.shape)}:{hashlib.sha256(t.contiguous().numpy().tobytes()).hexdigest()}"


def last_checkpoint(run: Path) -> dict:
    latest = json.loads((run / LATEST).read_text())
    return torch.load(io.BytesIO((run / latest["key"].split("/", 1)[1]).read_bytes()), weights_only=True)


def compare(before: str, after: str) -> int:
    old, new = runs(Path(before)), runs(Path(after))
    problems = [f"runs only in one store: {sorted(set(old) ^ set(new))}"] if set(old) != set(new) else []
    for key in sorted(set(old) & set(new)):
        a, b = (json.loads((store[key] / RESULT_FILE).read_text()) for store in (old, new))
        problems += [f"{key}: result.json {name} differs" for name in METRICS if a[name] != b[name]]
        ta, tb = tensors(last_checkpoint(old[key])), tensors(last_checkpoint(new[key]))
        fa, fb = ({path: fingerprint(t) for path, t in table.items()} for table in (ta, tb))
        same = fa == fb if set(fa) == set(fb) else sorted(fa.values()) == sorted(fb.values())
        if not same:
            problems.append(f"{key}: checkpoint tensors differ ({len(fa)} against {len(fb)} tensors)")
    for line in problems:
        print(line)
    print(f"{len(set(old) & set(new))} runs compared: {'identical' if not problems else f'{len(problems)} problems'}")
    return 1 if problems else 0


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2])
    else:
        sys.exit(compare(sys.argv[2], sys.argv[3]))
