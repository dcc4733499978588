"""An engine's state as checkpoint bytes, and back: loaded without unpickling code, checked against the state of
the engine it is loaded into.

Checkpoint bytes come from a store, so they are untrusted: torch's weights-only unpickler builds nothing but
tensors and plain containers. The check is one generic walk of the fresh engine's own state: the same fields;
every module's and buffer's tensors of the same names, dtypes and shapes; optimizers whose hyperparameters are
the config's and whose state fits their parameters; schedules at the checkpoint's step. A forged or damaged
checkpoint is a CheckpointRefused (the CLI: one line, exit code 2).
"""

import io
import math
from typing import Any

import torch

from runner.clel.engine import Engine


class CheckpointRefused(Exception):
    """The checkpoint's content does not fit this run."""


def to_bytes(engine: Engine, wall_s: float) -> bytes:
    """The engine's full state plus the training wall time so far, serialised."""
    buffer = io.BytesIO()
    torch.save({**engine.state_dict(), "wall_s": wall_s}, buffer)
    return buffer.getvalue()


def _expect(condition: bool, what: str) -> None:
    if not condition:
        raise CheckpointRefused(what)


def _same_tensors(loaded: Any, fresh: Any, where: str) -> None:
    """loaded has the structure of fresh: the same keys, and tensors of the same dtype and shape."""
    if isinstance(fresh, torch.Tensor):
        fits = isinstance(loaded, torch.Tensor) and loaded.dtype == fresh.dtype and loaded.shape == fresh.shape
        _expect(fits, f"{where} has another shape or type")
    elif isinstance(fresh, dict):
        _expect(isinstance(loaded, dict) and set(loaded) == set(fresh), f"{where} does not fit the model")
        for key, value in fresh.items():
            _same_tensors(loaded[key], value, f"{where}.{key}")


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


def restore(engine: Engine, payload: bytes) -> float:
    """Load checkpoint bytes into the engine after checking them; returns the training wall time so far."""
    device = next(engine.model.buffers()).device
    try:
        state = torch.load(io.BytesIO(payload), map_location=device, weights_only=True)
    except Exception as err:
        raise CheckpointRefused(f"not a checkpoint this runner wrote ({type(err).__name__})") from None
    _expect(isinstance(state, dict), "not a checkpoint this runner wrote (no state table)")
    fresh = engine.state_dict()
    expected = set(fresh) | {"wall_s"}
    _expect(set(state) == expected, f"fields {sorted(set(state) ^ expected)} do not fit this run")
    step = state["step"]
    _expect(type(step) is int and 0 <= step <= engine.iterations, f"step {step!r} is not in [0, iterations]")
    stored_hash = state["config_hash"]
    _expect(stored_hash == engine.config_hash, f"config hash {stored_hash!r} is not {engine.config_hash}")
    wall_s = state["wall_s"]
    _expect(type(wall_s) in (int, float) and math.isfinite(wall_s) and wall_s >= 0, f"wall_s {wall_s!r}")
    for name, _ in engine.model.named_children():
        _same_tensors(state[name], fresh[name], name)
    for name, _ in engine.model.named_buffers(recurse=False):
        _same_tensors(state[name], fresh[name], f"the {name}")
    groups = {name: _groups(optimizer) for name, optimizer in engine.optimizers.items()}
    try:
        engine.load_state_dict(state)
    except Exception as err:
        raise CheckpointRefused(f"its state does not fit the models ({type(err).__name__}: {err})") from None
    for name, optimizer in engine.optimizers.items():
        _check_optimizer(optimizer, groups[name], f"{name}_optimizer")
        _expect(engine.schedules[name].last_epoch == step, f"the {name} schedule is not at the checkpoint's step")
    return float(wall_s)
