"""A trainer's state as checkpoint bytes, and back: loaded without unpickling code, checked field by field.

Checkpoint bytes come from a store, so they are untrusted: torch's weights-only unpickler builds nothing but
tensors and plain containers, and every field is checked against the run's config before the trainer
uses it. A forged or damaged checkpoint is a CheckpointRefused (the CLI: one line, exit code 2).
"""

import io
import math
from typing import Any

import torch

from runner.clel.train import Trainer


class CheckpointRefused(Exception):
    """The checkpoint's content does not fit this run."""


def to_bytes(trainer: Trainer, wall_s: float) -> bytes:
    """The trainer's full state plus the training wall time so far, serialised."""
    buffer = io.BytesIO()
    torch.save({**trainer.state_dict(), "wall_s": wall_s}, buffer)
    return buffer.getvalue()


def _expect(condition: bool, what: str) -> None:
    if not condition:
        raise CheckpointRefused(what)


def _check_optimizer(optimizer: torch.optim.Optimizer, fresh_groups: list[dict[str, Any]], name: str) -> None:
    """Every state tensor has its parameter's shape; hyperparameters are the config's."""
    for group, fresh in zip(optimizer.param_groups, fresh_groups, strict=True):
        for key, value in fresh.items():
            if key not in ("params", "lr"):
                _expect(group.get(key) == value, f"{name}: {key} = {group.get(key)!r}, the config gives {value!r}")
        lr = group.get("lr")
        _expect(isinstance(lr, float) and math.isfinite(lr) and lr >= 0, f"{name}: learning rate {lr!r}")
        for param in group["params"]:
            for key, value in optimizer.state.get(param, {}).items():
                if isinstance(value, torch.Tensor) and value.dim() > 0:
                    _expect(value.shape == param.shape, f"{name}: state {key} has shape {tuple(value.shape)}")


def _groups(optimizer: torch.optim.Optimizer) -> list[dict[str, Any]]:
    return [{key: value for key, value in group.items() if key != "params"} for group in optimizer.param_groups]


def restore(trainer: Trainer, payload: bytes) -> float:
    """Load checkpoint bytes into the trainer after checking them; returns the training wall time so far."""
    cfg = trainer.cfg
    try:
        state = torch.load(io.BytesIO(payload), map_location=trainer.device, weights_only=True)
    except Exception as err:
        raise CheckpointRefused(f"not a checkpoint this runner wrote ({type(err).__name__})") from None
    _expect(isinstance(state, dict), "not a checkpoint this runner wrote (no state table)")
    expected = set(trainer.state_dict()) | {"wall_s"}
    _expect(set(state) == expected, f"fields {sorted(set(state) ^ expected)} do not fit this run")
    step = state["step"]
    _expect(type(step) is int and 0 <= step <= cfg.train.iterations, f"step {step!r} is not in [0, iterations]")
    _expect(state["config_hash"] == cfg.config_hash, f"config hash {state['config_hash']!r} is not {cfg.config_hash}")
    wall_s = state["wall_s"]
    _expect(type(wall_s) in (int, float) and math.isfinite(wall_s) and wall_s >= 0, f"wall_s {wall_s!r}")
    buffer = state["buffer"]
    _expect(
        isinstance(buffer, torch.Tensor)
        and buffer.dtype == trainer.sampler.buffer.dtype
        and buffer.shape == trainer.sampler.buffer.shape,
        "the replay buffer has another shape or type",
    )
    fresh = {"ebm": _groups(trainer.ebm_optimizer)}
    if trainer.crl is not None:
        fresh["crl"] = _groups(trainer.crl_optimizer)
    try:
        trainer.load_state_dict(state)
    except Exception as err:
        raise CheckpointRefused(f"its state does not fit the models ({type(err).__name__}: {err})") from None
    _check_optimizer(trainer.ebm_optimizer, fresh["ebm"], "ebm_optimizer")
    _expect(trainer.ebm_schedule.last_epoch == step, "the EBM schedule is not at the checkpoint's step")
    if trainer.crl is not None:
        _check_optimizer(trainer.crl_optimizer, fresh["crl"], "crl_optimizer")
        _expect(trainer.crl_schedule.last_epoch == step, "the encoder schedule is not at the checkpoint's step")
    return float(wall_s)
