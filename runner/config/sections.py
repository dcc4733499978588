"""The settings of a run, table by table: names, types and the domain of every value.

A config that validates never crashes later because of a value in it: every number has its real range,
and the checks that involve several tables live on RunConfig (runner/config/schema.py).
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

NAME_PATTERN = r"[a-z][a-z0-9_]{0,62}"  # experiment and profile names: a path part and a Kubernetes label
MAX_SEED = 2**31 - 1
OOD_SETS = ("interpolation", "inverted", "uniform_noise", "svhn", "cifar10", "cifar100")
DATASETS = ("digits", "cifar10", "cifar100", "svhn")
# Training-split sizes: a batch can never be larger (runner/data.py loads exactly these; tests check digits).
TRAIN_SPLIT_SIZES = {"digits": 1437, "cifar10": 50_000, "cifar100": 50_000, "svhn": 73_257}

UnitInterval = Field(ge=0, le=1)


class Section(BaseModel):
    """A config table: unknown keys, wrong types and non-finite numbers are errors; values are frozen."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


class DataConfig(Section):
    dataset: Literal["digits", "cifar10", "cifar100", "svhn"]
    image_size: int = Field(ge=8, le=256)
    dequantize: bool
    ood: list[Literal["interpolation", "inverted", "uniform_noise", "svhn", "cifar10", "cifar100"]] = Field(
        max_length=len(OOD_SETS)
    )

    @field_validator("ood")
    @classmethod
    def _distinct(cls, names: list[str]) -> list[str]:
        if len(set(names)) != len(names):
            raise ValueError("each OOD set at most once")
        return names


class EBMConfig(Section):
    channels: list[int] = Field(min_length=1, max_length=6)
    blocks_per_stage: int = Field(ge=1, le=16)
    feature_dim: int = Field(ge=1, le=8192)
    head_width: int = Field(ge=1, le=16384)
    projector_width: int = Field(ge=1, le=16384)
    spectral_norm: bool
    # power iterations of spectral norm per training step (the reference: one per SGLD step and one per forward
    # of data and samples, sgld.steps + 2); all but one run before SGLD, the last in the training forward
    power_iterations: int = Field(ge=1, le=10_000)

    @field_validator("channels")
    @classmethod
    def _channels(cls, channels: list[int]) -> list[int]:
        if not all(1 <= c <= 4096 for c in channels):
            raise ValueError("every stage needs 1 to 4096 channels")
        return channels


class EnergyConfig(Section):
    norm_direction_split: bool
    beta: float = Field(ge=0, le=1e4)
    alpha: float = Field(ge=0, le=1e4)


class OptimizerConfig(Section):
    name: Literal["sgd", "adam", "adamw"]
    lr: float = Field(gt=0, le=10)
    momentum: float = Field(ge=0, lt=1)
    weight_decay: float = Field(ge=0, le=1)
    betas: list[float] = Field(min_length=2, max_length=2)
    warmup_iterations: int = Field(ge=0, le=10**8)
    schedule: Literal["constant", "cosine"]
    lr_batch_scaling: bool  # multiply lr by batch_size / 256 (MAE's rule)

    @field_validator("betas")
    @classmethod
    def _betas(cls, betas: list[float]) -> list[float]:
        if not all(0 <= b < 1 for b in betas):
            raise ValueError("both betas must be in [0, 1)")
        return betas


class SGLDConfig(Section):
    steps: int = Field(ge=1, le=10_000)
    step_size: float = Field(gt=0, le=1e6)
    noise: float = Field(ge=0, le=10)
    grad_clip: float = Field(ge=0, le=1e6)  # 0 = no clip; the reference code clips at step_size by mistake
    buffer_size: int = Field(ge=1, le=10**7)
    reinit_prob: float = UnitInterval
    augment: bool


class TrainConfig(Section):
    iterations: int = Field(ge=1, le=10**8)
    batch_size: int = Field(ge=2, le=4096)
    ema_half_life_samples: float = Field(gt=0, le=1e12)
    ebm_optimizer: OptimizerConfig
    precision: Literal["fp32", "bf16"]  # bf16 = autocast for the networks (changes numerics; energies in fp32)


class EvalConfig(Section):
    fid_samples: int = Field(ge=2, le=10**6)
    fid_sgld_passes: int = Field(ge=0, le=1000)
    fid_features: Literal["auto", "inception", "digits-cnn"]
    inception_weights: str  # "" = pytorch-fid's own download; else a local path or an s3:// key
    batch_size: int = Field(ge=1, le=100_000)
    joint_beta: float = Field(ge=0, le=1e4)  # test-time beta of the joint OOD score
    sample_grid: int = Field(ge=1, le=1024)

    @field_validator("inception_weights")
    @classmethod
    def _weights(cls, value: str) -> str:
        if value.startswith("s3://") and not (len(value.split("/")) >= 4 and value.split("/", 3)[3]):
            raise ValueError("expected s3://bucket/key (or a local path, or '' for pytorch-fid's download)")
        if "\0" in value or len(value) > 4096:
            raise ValueError("not a usable path")
        return value


class RuntimeConfig(Section):
    """Where and how a run executes; not part of the config hash (the math does not depend on it)."""

    device: Literal["auto", "cpu", "cuda"]
    threads: int = Field(ge=0, le=1024)  # 0 = torch's default
    checkpoint_every: int = Field(ge=1, le=10**8)
    keep_checkpoints: int = Field(ge=1, le=100)
    log_every: int = Field(ge=1, le=10**8)
    data_root: str
    download: bool
    ood_files: list[str] = Field(max_length=64)
    progress: bool
    optimized: bool  # channels-last, spectral norm computed once per SGLD chain, frozen weights; same math
