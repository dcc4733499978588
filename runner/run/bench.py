"""`python -m runner bench`: time training iterations of a named configuration on synthetic data."""

import json
import resource
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from tqdm import tqdm

from runner.clel.model import training_engine
from runner.config import ExperimentsFile, RunConfig
from runner.data import ImageData
from runner.device import resolve_device
from runner.errors import UserError

# ref32: the configuration the reference implementation was timed on (issue "Performance").
REF32 = {
    "data.image_size": 32,
    "ebm.channels": [64, 64, 128, 128],
    "ebm.blocks_per_stage": 1,
    "train.batch_size": 32,
}
CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    "ref32": ("paper", REF32),
    "tiny": ("tiny", {}),
    "paper": ("paper", {}),
}
SYNTHETIC_IMAGES = 512


def bench_config(name: str, plain: bool, device: str, bf16: bool, overrides: dict[str, Any]) -> RunConfig:
    """The baseline experiment under the named benchmark configuration."""
    if name not in CONFIGS:
        raise UserError(f"bench --preset {name}: unknown (known: {', '.join(CONFIGS)})")
    profile, settings = CONFIGS[name]
    values = {
        **settings,
        "crl.pretrain_iterations": 0,  # timed steps are joint EBM + encoder steps, not encoder-only warm-up
        "runtime.device": device,
        "runtime.optimized": not plain,
        "train.precision": "bf16" if bf16 else "fp32",
        **overrides,
    }
    return ExperimentsFile().resolve("baseline", profile, 0, values)


def synthetic_data(size: int, count: int = SYNTHETIC_IMAGES) -> ImageData:
    """Random images (at least a batch of them): timing does not depend on the pixels."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (count, 3, size, size), generator=generator, dtype=torch.uint8)
    return ImageData("synthetic", images, images[:64], (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bar_steps(bar: tqdm, count: int):
    """range(count), advancing the bar after each step."""
    for index in range(count):
        yield index
        bar.update()


def run_bench(cfg: RunConfig, name: str, iterations: int, warmup: int) -> dict[str, Any]:
    """Warm up, time `iterations` training iterations; the SGLD share is timed by the model's "sgld" phase hook."""
    device = resolve_device(cfg.runtime.device)
    if cfg.runtime.threads:
        torch.set_num_threads(cfg.runtime.threads)
    engine = training_engine(
        cfg, synthetic_data(cfg.data.image_size, max(SYNTHETIC_IMAGES, cfg.train.batch_size)), device
    )
    phase_seconds: dict[str, float] = {}

    @contextmanager
    def timed(phase: str) -> Iterator[None]:
        _synchronize(device)
        started = time.perf_counter()
        yield
        _synchronize(device)
        phase_seconds[phase] = phase_seconds.get(phase, 0.0) + time.perf_counter() - started

    engine.model.phase_hooks.append(timed)
    bar = tqdm(total=warmup + iterations, desc=f"bench {name}", unit="it", file=sys.stderr, dynamic_ncols=True)
    for _ in range(warmup):
        engine.train_step()
        bar.update()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    phase_seconds.clear()
    times = []
    for _ in bar_steps(bar, iterations):
        _synchronize(device)
        started = time.perf_counter()
        engine.train_step()
        _synchronize(device)
        times.append(time.perf_counter() - started)
    bar.close()
    sgld_seconds = phase_seconds.get("sgld", 0.0)
    result = {
        "config": name,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "path": "plain" if not cfg.runtime.optimized else "optimized",
        "precision": cfg.train.precision,
        "batch_size": cfg.train.batch_size,
        "sgld_steps": cfg.sgld.steps,
        "iterations": iterations,
        "sec_per_iter": {
            "median": round(statistics.median(times), 4),
            "min": round(min(times), 4),
            "max": round(max(times), 4),
        },
        "sgld_share": round(sgld_seconds / sum(times), 3),
    }
    if device.type == "cuda":
        result["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return result


def bench(
    config: str = "ref32",
    iterations: int = 5,
    plain: bool = False,
    device: str = "cpu",
    bf16: bool = False,
    warmup: int = 1,
    overrides: dict[str, Any] | None = None,
    deprecation: str | None = None,
) -> str:
    """One JSON line describing the timing of `iterations` training iterations; `deprecation` is printed as a
    warning once the flags are known to be good."""
    if not isinstance(iterations, int) or iterations < 1:
        raise UserError(f"bench --iterations {iterations!r}: expected a positive integer")
    cfg = bench_config(config, plain, device, bf16, overrides or {})
    if deprecation:
        print(f"warning: {deprecation}", file=sys.stderr, flush=True)
    return json.dumps(run_bench(cfg, config, iterations, warmup))
