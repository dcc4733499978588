"""The CLI in a subprocess on the small tiny-profile configuration (tests.support.SMALL), and comparing what runs
leave behind."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from runner.config import parse_overrides
from tests.support import ROOT, SMALL, tiny_cfg


def runner_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "runner", *args]


def run_cli(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `python -m runner ARGS` from the repository root; returns the completed process."""
    return subprocess.run(
        runner_command(*args),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def local_args(store: str, iterations: int = 40, exp: str = "baseline", extra: str = "") -> list[str]:
    return ["local", "--exp", exp, "--iterations", str(iterations), "--store", store, "--set", f"{SMALL} {extra}"]


def run_id_of(
    exp: str = "baseline",
    seed: int = 0,
    iterations: int | None = 40,
    extra: str = "",
    smoke: bool = False,
    profile: str = "tiny",
    config: str | Path | None = None,
) -> str:
    """The run id that `local_args(store, iterations, exp, extra)` resolves to: SMALL, `extra` and --iterations
    (None: no --iterations) are overrides, so the settings among them that differ from the file's are its point."""
    overrides = parse_overrides(extra)
    if iterations is not None:
        overrides["train.iterations"] = iterations
    return tiny_cfg(exp, seed, overrides, profile=profile, smoke=smoke, config=config).run_id


def edited_config(directory: Path, old: str, new: str) -> Path:
    """A copy of the repository's experiments.toml in `directory` with the one line `old` replaced by `new`."""
    text = (ROOT / "experiments.toml").read_text()
    lines = text.splitlines(keepends=True)
    matching = [i for i, line in enumerate(lines) if line.split("#")[0].strip() == old]
    assert len(matching) == 1, f"{old!r} is not one line of experiments.toml"
    lines[matching[0]] = f"{new}\n"
    path = Path(directory) / "experiments.toml"
    path.write_text("".join(lines))
    return path


def load_checkpoint_state(payload: bytes) -> dict:
    return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)


def assert_states_equal(a, b, path: str = "state") -> None:
    """Bit-for-bit equality of nested checkpoint states (tensors with torch.equal)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), path
    elif isinstance(a, dict):
        assert set(a) == set(b), path
        for key in a:
            assert_states_equal(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_states_equal(x, y, f"{path}[{i}]")
    else:
        assert a == b, path


METRIC_KEYS = ("fid", "fid_init", "auroc", "iterations", "config_hash", "fid_features", "use_generated_negatives")


def result_metrics(result_json: bytes | str) -> dict:
    result = json.loads(result_json)
    return {key: result[key] for key in METRIC_KEYS}
