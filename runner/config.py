"""experiments.toml -> validated, resolved run configs: defaults <- profile <- experiment <- CLI overrides."""

import difflib
import hashlib
import json
import shlex
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from runner.errors import UserError

DEFAULT_CONFIG_FILE = "experiments.toml"
TOP_LEVEL_TABLES = ("defaults", "profiles", "experiments", "sweep", "cluster")
NOT_A_SETTING = ("description",)  # keys a profile or experiment may carry that are not config values


class Section(BaseModel):
    """A config table: unknown keys and wrong types are errors, values never change after resolution."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class DataConfig(Section):
    dataset: Literal["digits", "cifar10", "cifar100", "svhn"]
    image_size: int = Field(ge=8)
    dequantize: bool
    ood: list[str]


class EBMConfig(Section):
    channels: list[int] = Field(min_length=1)
    blocks_per_stage: int = Field(ge=1)
    feature_dim: int = Field(ge=1)
    head_width: int = Field(ge=1)
    projector_width: int = Field(ge=1)
    spectral_norm: bool


class EnergyConfig(Section):
    norm_direction_split: bool
    beta: float = Field(ge=0)
    alpha: float = Field(ge=0)


class OptimizerConfig(Section):
    name: Literal["sgd", "adam", "adamw"]
    lr: float = Field(gt=0)
    momentum: float = Field(ge=0)
    weight_decay: float = Field(ge=0)
    betas: list[float] = Field(min_length=2, max_length=2)
    warmup_iterations: int = Field(ge=0)
    schedule: Literal["constant", "cosine"]
    lr_batch_scaling: bool  # multiply lr by batch_size / 256 (MAE's rule)


class ContrastiveConfig(Section):
    """SimCLR and MoCo: projector backbone -> hidden -> latent_dim."""

    projector_hidden: int = Field(ge=1)
    latent_dim: int = Field(ge=2)
    temperature: float = Field(gt=0)
    optimizer: OptimizerConfig


class MoCoConfig(ContrastiveConfig):
    queue_size: int = Field(ge=1)
    momentum_start: float = Field(ge=0, le=1)
    momentum_end: float = Field(ge=0, le=1)


class BYOLConfig(Section):
    projector_hidden: int = Field(ge=1)
    predictor_hidden: int = Field(ge=1)
    latent_dim: int = Field(ge=2)
    momentum_start: float = Field(ge=0, le=1)
    momentum_end: float = Field(ge=0, le=1)
    optimizer: OptimizerConfig


class MAEConfig(Section):
    patch_size: int = Field(ge=1)
    width: int = Field(ge=2)
    depth: int = Field(ge=1)
    heads: int = Field(ge=1)
    decoder_width: int = Field(ge=1)
    decoder_depth: int = Field(ge=1)
    mask_ratio: float = Field(gt=0, lt=1)
    optimizer: OptimizerConfig


CRLMethod = Literal["simclr", "moco", "byol", "mae", "none"]
METHODS_WITH_NEGATIVES = ("simclr", "moco")


class CRLConfig(Section):
    method: CRLMethod
    backbone_width: int = Field(ge=1)  # ResNet-18 width (64 = the standard network) for simclr/moco/byol
    use_generated_negatives: bool
    simclr: ContrastiveConfig
    moco: MoCoConfig
    byol: BYOLConfig
    mae: MAEConfig

    @property
    def latent_dim(self) -> int:
        """The dimension of the latent z (the EBM projector's output size follows it)."""
        if self.method == "none":
            return self.simclr.latent_dim
        if self.method == "mae":
            return self.mae.width
        return getattr(self, self.method).latent_dim

    @property
    def generated_negatives(self) -> bool | str:
        """Whether generated samples serve as extra negatives; 'n/a' for methods without negatives."""
        return self.use_generated_negatives if self.method in METHODS_WITH_NEGATIVES else "n/a"


class SGLDConfig(Section):
    steps: int = Field(ge=1)
    step_size: float = Field(gt=0)
    noise: float = Field(ge=0)
    grad_clip: float = Field(ge=0)  # 0 = no clip; the reference code clips at step_size by mistake
    buffer_size: int = Field(ge=1)
    reinit_prob: float = Field(ge=0, le=1)
    augment: bool


class TrainConfig(Section):
    iterations: int = Field(ge=1)
    batch_size: int = Field(ge=2)
    ema_half_life_samples: float = Field(gt=0)
    ebm_optimizer: OptimizerConfig
    precision: Literal["fp32", "bf16"]  # bf16 = autocast for the networks (changes numerics; energies in fp32)


class EvalConfig(Section):
    fid_samples: int = Field(ge=2)
    fid_sgld_passes: int = Field(ge=0)
    fid_features: Literal["auto", "inception", "digits-cnn"]
    inception_weights: str  # "" = pytorch-fid's own download; else a local path or an s3:// key
    batch_size: int = Field(ge=1)
    joint_beta: float = Field(ge=0)  # test-time beta of the joint OOD score
    sample_grid: int = Field(ge=1)


class RuntimeConfig(Section):
    """Where and how a run executes; not part of the config hash (the math does not depend on it)."""

    device: Literal["auto", "cpu", "cuda"]
    threads: int = Field(ge=0)  # 0 = torch's default
    checkpoint_every: int = Field(ge=1)
    keep_checkpoints: int = Field(ge=1)
    log_every: int = Field(ge=1)
    data_root: str
    download: bool
    ood_files: list[str]
    progress: bool
    optimized: bool  # channels-last, spectral norm computed once per SGLD chain, frozen weights; same math


class RunConfig(Section):
    experiment: str
    profile: str
    seed: int = Field(ge=0)
    data: DataConfig
    ebm: EBMConfig
    energy: EnergyConfig
    crl: CRLConfig
    sgld: SGLDConfig
    train: TrainConfig
    eval: EvalConfig
    runtime: RuntimeConfig

    @property
    def run_id(self) -> str:
        """<experiment>-<profile>-s<seed>: the run's directory name in the store."""
        return f"{self.experiment}-{self.profile}-s{self.seed}"

    def hashed_dict(self) -> dict[str, Any]:
        """Everything that determines the result: the config without its runtime section."""
        return self.model_dump(mode="json", exclude={"runtime"})

    @property
    def config_hash(self) -> str:
        """First 12 hex digits of the sha256 of the canonical JSON of hashed_dict()."""
        canonical = json.dumps(self.hashed_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    @property
    def fid_features(self) -> str:
        """The FID feature network actually used: digits-cnn for digits, Inception otherwise, unless set."""
        if self.eval.fid_features != "auto":
            return self.eval.fid_features
        return "digits-cnn" if self.data.dataset == "digits" else "inception"


# --- loading and merging ------------------------------------------------------------------------


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in table.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, path + "."))
        else:
            flat[path] = value
    return flat


def _unflatten(flat: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for path, value in flat.items():
        *parents, leaf = path.split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def _leaf_paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    paths = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            paths |= _leaf_paths(annotation, f"{prefix}{name}.")
        else:
            paths.add(f"{prefix}{name}")
    return paths


SETTABLE_PATHS = frozenset(_leaf_paths(RunConfig) - {"experiment", "profile"})


def _check_keys(flat: dict[str, Any], source: str) -> None:
    for path in flat:
        if path not in SETTABLE_PATHS:
            close = difflib.get_close_matches(path, SETTABLE_PATHS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise UserError(f"{source}: {path}: unknown key{hint}")


class ExperimentsFile:
    """A parsed experiments.toml: defaults, profiles, experiments, sweep and cluster tables."""

    def __init__(self, path: str | Path = DEFAULT_CONFIG_FILE):
        self.path = Path(path)
        try:
            raw = tomllib.loads(self.path.read_text())
        except FileNotFoundError:
            raise UserError(f"{self.path}: no such config file") from None
        except tomllib.TOMLDecodeError as err:
            raise UserError(f"{self.path}: not valid TOML: {err}") from None
        for key in raw:
            if key not in TOP_LEVEL_TABLES:
                raise UserError(f"{self.path}: [{key}]: unknown table (known: {', '.join(TOP_LEVEL_TABLES)})")
        self.raw = raw
        self.defaults = raw.get("defaults", {})
        self.profiles: dict[str, dict[str, Any]] = raw.get("profiles", {})
        self.experiments: dict[str, dict[str, Any]] = raw.get("experiments", {})
        self.sweep: dict[str, Any] = raw.get("sweep", {})
        self.cluster: dict[str, Any] = raw.get("cluster", {})

    def description(self, experiment: str) -> str:
        """The experiment's one-line description, or ''."""
        return str(self.experiments.get(experiment, {}).get("description", ""))

    def _layer(self, table: dict[str, Any], source: str) -> dict[str, tuple[Any, str]]:
        settings = {k: v for k, v in table.items() if k not in NOT_A_SETTING}
        flat = _flatten(settings)
        _check_keys(flat, source)
        return {path: (value, source) for path, value in flat.items()}

    def resolve(
        self, experiment: str, profile: str, seed: int = 0, overrides: dict[str, Any] | None = None
    ) -> RunConfig:
        """The validated config of one run: defaults <- profile <- experiment <- overrides."""
        if profile not in self.profiles:
            raise UserError(f"{self.path}: unknown profile '{profile}' (known: {', '.join(self.profiles)})")
        if experiment not in self.experiments:
            raise UserError(f"{self.path}: unknown experiment '{experiment}' (known: {', '.join(self.experiments)})")
        merged = self._layer(self.defaults, f"{self.path} [defaults]")
        merged |= self._layer(self.profiles[profile], f"{self.path} [profiles.{profile}]")
        merged |= self._layer(self.experiments[experiment], f"{self.path} [experiments.{experiment}]")
        merged |= self._layer(_unflatten(overrides or {}), "--set")
        values = {path: value for path, (value, _) in merged.items()}
        values |= {"experiment": experiment, "profile": profile, "seed": seed}
        try:
            return RunConfig.model_validate(_unflatten(values))
        except ValidationError as err:
            first = err.errors()[0]
            path = ".".join(str(part) for part in first["loc"])
            source = merged.get(path, (None, f"{self.path} [defaults]"))[1]
            if first["type"] == "missing":
                raise UserError(f"{source}: {path}: missing (every key needs a value in [defaults])") from None
            got = f", got {first['input']!r}" if "input" in first else ""
            raise UserError(f"{source}: {path}: {first['msg'].lower()}{got}") from None

    def seeds(self) -> list[int]:
        """The sweep's seeds ([sweep] seeds), default [0]."""
        return list(self.sweep.get("seeds", [0]))


def parse_overrides(items: str | list[str] | tuple[str, ...] | None) -> dict[str, Any]:
    """`--set` values: 'KEY=VALUE' strings (several space-separated in one string, or repeated).

    VALUE is read as a TOML value (numbers, true/false, [lists], "strings"); anything that is not
    valid TOML is taken as a bare string.
    """
    if items is None:
        return {}
    if isinstance(items, str):
        items = [items]
    overrides: dict[str, Any] = {}
    for item in items:
        for assignment in shlex.split(str(item)):
            key, sep, text = assignment.partition("=")
            if not sep or not key:
                raise UserError(f"--set {assignment}: expected KEY=VALUE, e.g. --set sgld.steps=20")
            try:
                value = tomllib.loads(f"v = {text}")["v"]
            except tomllib.TOMLDecodeError:
                value = text
            overrides[key.strip()] = value
    return overrides
