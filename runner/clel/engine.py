"""The training engine, model-agnostic: the data order, one training step (loss, backward, the optimizer steps,
their schedules, the EMA copies) and the full state a checkpoint holds.

A model gives `loss(x, step) -> (loss, metrics)`, `optimizer_groups()` (name -> OptimizerGroup), `ema_pairs()`,
`after_update(progress)` and `GUARDED_METRICS` (a metric a step does not report is not checked); its state is its
child modules and its own buffers, by name. The engine declares nothing by hand: a checkpoint is those parts, each
optimizer and schedule by its group's name, the step and the RNG states.
"""

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from runner.config import OptimizerConfig, TrainConfig
from runner.data import dequantize, to_unit_float
from runner.errors import Diverged


def seed_everything(seed: int) -> None:
    """Python, numpy and torch generators from one seed (before the model is built: its initial weights)."""
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)


def lr_factor(cfg: OptimizerConfig, iterations: int, step: int) -> float:
    """Linear warm-up over warmup_iterations, then constant or cosine decay to 0 at `iterations`."""
    factor = min(1.0, (step + 1) / cfg.warmup_iterations) if cfg.warmup_iterations else 1.0
    if cfg.schedule == "cosine":
        factor *= 0.5 * (1 + math.cos(math.pi * min(step, iterations) / iterations))
    return factor


@dataclass
class OptimizerGroup:
    """Parameters a model trains with one optimizer: its settings, the step the group starts at (its learning
    rate is 0 before it, and its warm-up and decay count from it), and how many steps its schedule spans."""

    params: list[nn.Parameter]
    settings: OptimizerConfig
    steps: int
    first_step: int = 0


def build_optimizer(
    params: list[nn.Parameter], cfg: OptimizerConfig, batch_size: int, iterations: int, first_step: int = 0
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """The optimizer and its per-iteration schedule (lr 0 before first_step; the schedule counts from it)."""
    lr = cfg.lr * batch_size / 256 if cfg.lr_batch_scaling else cfg.lr
    if cfg.name == "sgd":
        optimizer = torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    elif cfg.name == "adam":
        optimizer = torch.optim.Adam(params, lr=lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    else:
        optimizer = torch.optim.AdamW(params, lr=lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)

    def factor(step: int) -> float:
        return 0.0 if step < first_step else lr_factor(cfg, iterations, step - first_step)

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    return optimizer, schedule


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model for parameters; buffers (BN stats, SN vectors) copied."""
    ema_params = [p for p in ema.parameters() if p.dtype.is_floating_point]
    params = [p.detach() for p in model.parameters() if p.dtype.is_floating_point]
    torch._foreach_lerp_(ema_params, params, 1.0 - decay)
    for ema_buffer, buffer in zip(ema.buffers(), model.buffers(), strict=True):
        ema_buffer.copy_(buffer)


class Batches:
    """The training split as shuffled mini-batches: a new permutation per epoch from (seed, epoch), so the step
    alone fixes the batch (exact resume); images as floats in [0, 1], dequantised if asked."""

    def __init__(self, images: torch.Tensor, batch_size: int, seed: int, dequantized: bool, channels_last: bool):
        self.images, self.batch_size, self.seed = images, batch_size, seed
        self.dequantized, self.channels_last = dequantized, channels_last
        self.batches_per_epoch = len(images) // batch_size
        self._epoch, self._perm = -1, torch.empty(0, dtype=torch.long)

    def indices(self, step: int) -> torch.Tensor:
        """The dataset indices of the batch of this (0-based) step."""
        epoch, position = divmod(step, self.batches_per_epoch)
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch, self._perm = epoch, torch.randperm(len(self.images), generator=generator)
        return self._perm[position * self.batch_size : (position + 1) * self.batch_size]

    def __call__(self, step: int) -> torch.Tensor:
        images = self.images[self.indices(step).to(self.images.device)]
        x = dequantize(images) if self.dequantized else to_unit_float(images)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


def capture_rng() -> dict[str, Any]:
    """Python, numpy, torch CPU and CUDA generator states."""
    name, keys, position, has_gauss, cached = np.random.get_state()
    numpy_state = (name, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached)
    state = {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of capture_rng."""
    random.setstate(state["python"])
    name, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Engine:
    """A model, its optimizers and schedules (one per optimizer group), its EMA copies and the step."""

    def __init__(
        self,
        model: nn.Module,
        batches: Callable[[int], torch.Tensor],
        train: TrainConfig,
        config_hash: str,
        steps: int | None = None,
    ):
        """`steps`: the run's optimizer steps (default train.iterations)."""
        self.model, self.batches, self.config_hash = model, batches, config_hash
        self.iterations = train.iterations if steps is None else steps
        self.batch_size = train.batch_size
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedules: dict[str, torch.optim.lr_scheduler.LambdaLR] = {}
        for name, group in model.optimizer_groups().items():
            self.optimizers[name], self.schedules[name] = build_optimizer(
                group.params, group.settings, train.batch_size, group.steps, group.first_step
            )
        self.ema_decay = 0.5 ** (train.batch_size / train.ema_half_life_samples)
        self.ema_start = train.ema_half_life_samples / train.batch_size  # EMA = live weights before this step
        self.step = 0

    def train_step(self) -> Any:
        """One iteration: the model's loss on the step's batch, backward, every optimizer and schedule, the
        model's after-update, the EMA copies. Diverged (nothing updated) when a guarded metric is not finite."""
        loss, metrics = self.model.loss(self.batches(self.step), self.step)
        values = metrics.as_dict()
        for name in self.model.GUARDED_METRICS:
            if name in values and not math.isfinite(values[name]):
                raise Diverged(f"step {self.step + 1}: {name} is {values[name]}; the last good checkpoint is kept")
        for optimizer in self.optimizers.values():
            optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for name, optimizer in self.optimizers.items():
            optimizer.step()
            self.schedules[name].step()
        self.model.after_update((self.step + 1) / self.iterations)
        decay = 0.0 if self.step < self.ema_start else self.ema_decay
        for ema, live in self.model.ema_pairs():
            ema_update(ema, live, decay)
        self.step += 1
        return metrics

    def lr(self) -> dict[str, float]:
        """Current learning rates, lr_<group>."""
        return {f"lr_{name}": optimizer.param_groups[0]["lr"] for name, optimizer in self.optimizers.items()}

    def state_dict(self) -> dict[str, Any]:
        """The full training state: resuming from it continues bit for bit (on CPU)."""
        state: dict[str, Any] = {"step": self.step, "config_hash": self.config_hash}
        state |= {name: module.state_dict() for name, module in self.model.named_children()}
        state |= {name: buffer for name, buffer in self.model.named_buffers(recurse=False)}
        state |= {f"{name}_optimizer": optimizer.state_dict() for name, optimizer in self.optimizers.items()}
        state |= {f"{name}_schedule": schedule.state_dict() for name, schedule in self.schedules.items()}
        return state | {"rng": capture_rng()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore everything state_dict() saved."""
        self.step = state["step"]
        for name, module in self.model.named_children():
            module.load_state_dict(state[name])
        for name, buffer in self.model.named_buffers(recurse=False):
            buffer.copy_(state[name])
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state[f"{name}_optimizer"])
            self.schedules[name].load_state_dict(state[f"{name}_schedule"])
        restore_rng(state["rng"])
