"""The run configuration: experiments.toml resolved and validated into a RunConfig per experiment x seed.

The tables' definitions (runner.config.sections) import nothing heavy; RunConfig and ExperimentsFile need the
method registry (runner.clel.crl, which imports torch), so they are loaded on first use. That also lets the
methods' settings build on the sections without an import cycle.
"""

from typing import Any

from runner.config.overrides import parse_overrides
from runner.config.sections import (
    MAX_SEED,
    NAME_PATTERN,
    DataConfig,
    EBMConfig,
    EnergyConfig,
    EvalConfig,
    OptimizerConfig,
    RuntimeConfig,
    SGLDConfig,
    TrainConfig,
)

DEFAULT_CONFIG_FILE = "experiments.toml"
_LAZY = {
    "ExperimentsFile": "runner.config.experiments_file",
    "SweepConfig": "runner.config.experiments_file",
    "RunConfig": "runner.config.schema",
    "CRLConfig": "runner.config.schema",
    "SETTABLE_PATHS": "runner.config.schema",
}

__all__ = [
    "DEFAULT_CONFIG_FILE",
    "MAX_SEED",
    "NAME_PATTERN",
    "DataConfig",
    "EBMConfig",
    "EnergyConfig",
    "EvalConfig",
    "OptimizerConfig",
    "RuntimeConfig",
    "SGLDConfig",
    "TrainConfig",
    "parse_overrides",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'runner.config' has no attribute {name!r}")
