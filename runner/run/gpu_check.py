"""`python -m runner gpu_check`: everything a GPU machine should tell us, in one prepared run, as one JSON line.

1. `bench` of `paper` and `ref32`, each optimized, plain and bf16: s/iter, SGLD share, peak GPU memory, and the
   SGLD's achieved TFLOP/s from its counted FLOPs (torch's FlopCounterMode on one SGLD step: forward and input
   gradient of the EBM);
2. a short paper-architecture training run with evaluation on the embedded digits at 32 x 32;
3. a checkpoint written on the device, read back through a store, resumed for the second half of a run and
   compared with the uninterrupted run's parameters.

`--device cpu` is a dry run at tiny sizes (the test suite runs it). On one H200-class GPU the CUDA run is sized
to end in about five minutes.
"""

import json
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from runner.clel.engine import Engine
from runner.clel.model import training_engine
from runner.config import ExperimentsFile, RunConfig
from runner.data import load_digits
from runner.device import resolve_device
from runner.run import checkpoints
from runner.run.bench import bench_config, run_bench, synthetic_data
from runner.store import RunStore, open_store


@dataclass(frozen=True)
class Sizes:
    """How much each part does: real sizes on a GPU, tiny ones for the CPU dry run."""

    bench_iterations: int
    bench_warmup: int
    bench_overrides: dict[str, Any]
    train_iterations: int
    train_overrides: dict[str, Any]
    resume_steps: int


GPU_SIZES = Sizes(
    bench_iterations=5,
    bench_warmup=2,
    bench_overrides={},
    train_iterations=150,
    train_overrides={"eval.fid_samples": 2000, "eval.fid_sgld_passes": 2, "runtime.checkpoint_every": 75},
    resume_steps=10,
)
TINY = {
    "ebm.channels": [8, 8, 16, 16],
    "ebm.blocks_per_stage": 1,
    "ebm.head_width": 32,
    "ebm.projector_width": 32,
    "ebm.power_iterations": 4,
    "crl.backbone_width": 4,
    "crl.simclr.projector_hidden": 32,
    "crl.simclr.latent_dim": 16,
    "sgld.steps": 2,
    "sgld.buffer_size": 32,
    "train.batch_size": 8,
}
DRY_SIZES = Sizes(
    bench_iterations=1,
    bench_warmup=0,
    bench_overrides=TINY,
    train_iterations=4,
    train_overrides={**TINY, "eval.fid_samples": 64, "eval.fid_sgld_passes": 1, "eval.batch_size": 64},
    resume_steps=2,
)
DIGITS_32 = {
    "data.dataset": "digits",
    "data.image_size": 32,
    "data.ood": ["uniform_noise", "inverted", "interpolation"],
    "runtime.progress": False,
}


def sgld_step_flops(engine: Engine) -> int:
    """FLOPs of one SGLD step on a training batch: the EBM's forward and the gradient with respect to its input."""
    model = engine.model
    x = torch.rand((engine.batch_size, *model.buffer.shape[1:]), device=model.buffer.device)
    energy = model.marginal_energy_fn(model.ebm)
    with model.sampling(model.ebm), FlopCounterMode(display=False) as counter:
        x.requires_grad_(True)
        # the counter's module hooks refuse a leaf tensor as a module's input: hand the EBM a copy (no FLOPs)
        torch.autograd.grad(energy(x.clone()).sum(), x)
    return counter.get_total_flops()


def bench_row(name: str, plain: bool, bf16: bool, device: str, sizes: Sizes) -> dict[str, Any]:
    """One bench configuration and path: its timing and the SGLD's achieved throughput."""
    cfg = bench_config(name, plain, device, bf16, sizes.bench_overrides)
    result = run_bench(cfg, name, sizes.bench_iterations, sizes.bench_warmup)
    engine = training_engine(cfg, synthetic_data(cfg.data.image_size), resolve_device(device))
    flops = sgld_step_flops(engine) * cfg.sgld.steps
    sgld_seconds = result["sec_per_iter"]["median"] * result["sgld_share"]
    return {
        **{key: result[key] for key in ("config", "path", "precision", "batch_size", "sgld_steps", "sgld_share")},
        "sec_per_iter": result["sec_per_iter"]["median"],
        "peak_gpu_mb": result.get("peak_gpu_mb"),
        "sgld_gflop_per_iter": round(flops / 1e9, 2),
        "sgld_tflops": float(f"{flops / sgld_seconds / 1e12:.4g}") if sgld_seconds > 0 else None,
    }


def digits_config(iterations: int, device: str, sizes: Sizes) -> RunConfig:
    """The paper architecture on the embedded digits at 32 x 32."""
    values = {**DIGITS_32, **sizes.train_overrides, "train.iterations": iterations, "runtime.device": device}
    return ExperimentsFile().resolve("baseline", "paper", 0, values)


def training_run(device: str, sizes: Sizes, store_uri: str) -> dict[str, Any]:
    """Train and evaluate the short run; its timing, peak memory and metrics."""
    from runner.run.execute import execute

    cfg = digits_config(sizes.train_iterations, device, sizes)
    if torch.cuda.is_available() and device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    result = execute(cfg, store_uri, log=lambda _: None)
    entry = {
        "iterations": result["iterations"],
        "wall_s": round(time.perf_counter() - started, 1),
        "fid": result["fid"],
        "fid_init": result["fid_init"],
        "collapsed": result["collapsed"],
        "auroc_marginal": {name: scores["marginal"] for name, scores in result["auroc"].items()},
    }
    if device == "cuda":
        entry["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return entry


def resume_check(device: str, sizes: Sizes, store_uri: str) -> dict[str, Any]:
    """Train 2k steps with a checkpoint at k through a store; resume a new engine from it; compare the end states."""
    k = sizes.resume_steps
    cfg = digits_config(2 * k, device, sizes)
    data, dev = load_digits(32), resolve_device(device)
    straight = training_engine(cfg, data, dev)
    run = RunStore(open_store(store_uri), "resume-check")
    for _ in range(k):
        straight.train_step()
    run.save_checkpoint(k, checkpoints.to_bytes(straight, 0.0))
    for _ in range(k):
        straight.train_step()
    resumed = training_engine(cfg, data, dev)
    checkpoints.restore(resumed, RunStore(open_store(store_uri), "resume-check").load_checkpoint(lambda _: None))
    for _ in range(k):
        resumed.train_step()
    differences = [
        (a - b).abs().max().item()
        for a, b in zip(straight.model.ebm.state_dict().values(), resumed.model.ebm.state_dict().values(), strict=True)
        if a.is_floating_point()
    ]
    return {
        "resumed_at": k,
        "steps": 2 * k,
        "max_abs_param_diff": max(differences),
        "bit_identical": max(differences) == 0,
    }


def _ratio(rows: list[dict[str, Any]], config: str) -> float:
    """sec/iter of the plain path over the optimized fp32 path (> 1: the optimizations pay)."""
    seconds = {(r["path"], r["precision"]): r["sec_per_iter"] for r in rows if r["config"] == config}
    return round(seconds["plain", "fp32"] / seconds["optimized", "fp32"], 3)


def gpu_check(device: str = "cuda") -> dict[str, Any]:
    """Run the three parts on `device` (cuda, or cpu for the dry run) and return the summary."""
    sizes = GPU_SIZES if device == "cuda" else DRY_SIZES
    dev = resolve_device(device)
    started = time.perf_counter()
    rows = [
        bench_row(name, plain, bf16, device, sizes)
        for name in ("paper", "ref32")
        for plain, bf16 in ((False, False), (True, False), (False, True))
    ]
    with tempfile.TemporaryDirectory(prefix="clel-gpu-check-") as store:
        training = training_run(device, sizes, store)
        resume = resume_check(device, sizes, store)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    return {
        "device": name,
        "torch": torch.__version__,
        "dry_run": device != "cuda",
        "bench": rows,
        "plain_over_optimized": {config: _ratio(rows, config) for config in ("paper", "ref32")},
        "train": training,
        "resume": resume,
        "wall_s": round(time.perf_counter() - started, 1),
    }


def gpu_check_json(device: str = "cuda") -> str:
    """The summary as one JSON line."""
    return json.dumps(gpu_check(device))
