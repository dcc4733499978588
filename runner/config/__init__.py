"""The run configuration: experiments.toml resolved and validated into a RunConfig per experiment x seed.

Torch-free: the tables (sections), the methods' settings (methods), the whole config (schema), the file and its
layering (experiments_file) and --set (overrides) import nothing heavy, so a command that only reads the config
starts without torch.
"""

from runner.config.experiments_file import DEFAULT_CONFIG_FILE, ExperimentsFile, SweepConfig
from runner.config.methods import METHODS, NO_ENCODER, MethodSettings
from runner.config.overrides import parse_overrides
from runner.config.schema import SETTABLE_PATHS, CRLConfig, RunConfig
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

__all__ = [
    "DEFAULT_CONFIG_FILE",
    "MAX_SEED",
    "METHODS",
    "NAME_PATTERN",
    "NO_ENCODER",
    "SETTABLE_PATHS",
    "CRLConfig",
    "DataConfig",
    "EBMConfig",
    "EnergyConfig",
    "EvalConfig",
    "ExperimentsFile",
    "MethodSettings",
    "OptimizerConfig",
    "RunConfig",
    "RuntimeConfig",
    "SGLDConfig",
    "SweepConfig",
    "TrainConfig",
    "parse_overrides",
]
