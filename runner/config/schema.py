"""RunConfig: every table of a run's config, the encoder's method tables taken from the method registry,
and the checks that involve several tables."""

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model, model_validator

from runner import layout
from runner.config.methods import METHODS, NO_ENCODER, MethodSettings
from runner.config.sections import (
    MAX_SEED,
    NAME_PATTERN,
    TRAIN_SPLIT_SIZES,
    DataConfig,
    EBMConfig,
    EnergyConfig,
    EvalConfig,
    OptimizerConfig,
    RuntimeConfig,
    Section,
    SGLDConfig,
    TrainConfig,
)

MethodName = Literal[tuple([*METHODS, NO_ENCODER])]  # type: ignore[valid-type]


class CRLBase(Section):
    """crl: which self-supervised method trains the encoder, and the settings shared by the methods."""

    method: MethodName
    backbone_width: int = Field(ge=1, le=1024)  # ResNet-18 width (64 = the standard network)
    use_generated_negatives: bool  # the EBM samples' latents as extra negatives, where the method has negatives
    # where the EBM's z comes from: "separate" = its own strong view under no_grad (the reference), "loss" = the
    # first view the method's loss already encoded (one encoder pass fewer)
    latent_view: Literal["separate", "loss"]
    # the encoder's views (the method's loss and the EBM's z): RandomResizedCrop's smallest area fraction and
    # whether a view may be flipped horizontally (CLEL: 0.08 and true; the replay buffer keeps CLEL's augmentation)
    view_crop_min_scale: float = Field(gt=0, le=1)
    view_flip: bool
    # steps that train the encoder alone before the EBM's train.iterations start (CLEL: 0, both from step 0)
    pretrain_iterations: int = Field(ge=0, le=10**8)

    @property
    def settings(self) -> MethodSettings | None:
        """The selected method's table (None for the plain EBM)."""
        return None if self.method == NO_ENCODER else getattr(self, self.method)

    @property
    def latent_dim(self) -> int:
        """The dimension of the latent z; the EBM projector's output size follows it.

        The plain EBM keeps SimCLR's size, so its EBM has the baseline's shape and initial weights.
        """
        settings = self.settings if self.settings is not None else self.simclr  # type: ignore[attr-defined]
        return settings.latent_size()

    @property
    def generated_negatives(self) -> bool | str:
        """Whether generated samples serve as extra negatives; 'n/a' for methods without negatives."""
        if self.method == NO_ENCODER or not METHODS[self.method].settings.has_negatives:
            return "n/a"
        return self.use_generated_negatives

    @property
    def optimizer(self) -> OptimizerConfig | None:
        """The selected method's optimizer settings."""
        return None if self.settings is None else self.settings.optimizer


def _method_field(settings_type: type[MethodSettings]) -> tuple[type, Any]:
    return settings_type, Field(default_factory=settings_type)


CRLConfig = create_model(
    "CRLConfig",
    __base__=CRLBase,
    __doc__=CRLBase.__doc__,
    **{name: _method_field(method.settings) for name, method in METHODS.items()},
)


class RunConfig(Section):
    experiment: str = Field(pattern=f"^{NAME_PATTERN}$")
    profile: str = Field(pattern=f"^{NAME_PATTERN}$")
    seed: int = Field(ge=0, le=MAX_SEED)
    smoke: bool = False  # a smoke run ([smoke] applied): its own run id, never mixed with real results
    # the settings that differ from the experiment's own config (--set, a grid point, --iterations): in the run id
    point: dict[str, Any] = Field(default_factory=dict)
    data: DataConfig
    ebm: EBMConfig
    energy: EnergyConfig
    crl: CRLConfig  # type: ignore[valid-type]
    sgld: SGLDConfig
    train: TrainConfig
    eval: EvalConfig
    runtime: RuntimeConfig

    @model_validator(mode="after")
    def _consistent(self) -> "RunConfig":
        size, stages = self.data.image_size, len(self.ebm.channels)
        if size % 2 ** (stages - 1):
            raise ValueError(
                f"data.image_size = {size} must be divisible by {2 ** (stages - 1)}: "
                f"the EBM halves it between its {stages} stages (ebm.channels)"
            )
        split = TRAIN_SPLIT_SIZES[self.data.dataset]
        if self.train.batch_size > split:
            raise ValueError(
                f"train.batch_size = {self.train.batch_size} is larger than the {self.data.dataset} training split "
                f"({split} images)"
            )
        if self.sgld.buffer_size < self.train.batch_size:
            raise ValueError(
                f"sgld.buffer_size = {self.sgld.buffer_size} is smaller than train.batch_size = "
                f"{self.train.batch_size}: each step draws a batch of distinct buffer rows"
            )
        if self.crl.method == NO_ENCODER and self.energy.beta != 0:
            raise ValueError(f"crl.method = {NO_ENCODER} (no encoder, no z) needs energy.beta = 0")
        if self.crl.method == "mae" and size % self.crl.mae.patch_size:
            raise ValueError(f"crl.mae.patch_size = {self.crl.mae.patch_size} does not divide data.image_size = {size}")
        if self.fid_features == "digits-cnn" and self.data.dataset != "digits":
            raise ValueError("eval.fid_features = digits-cnn is a feature network for the digits dataset only")
        return self

    @property
    def variant(self) -> str:
        """The run id's variant part: 'smoke', the point's tag, both, or '' (runner.layout)."""
        return layout.variant_of(self.smoke, self.point)

    @property
    def run_id(self) -> str:
        """<experiment>-<profile>[-<variant>]-s<seed>: the run's directory name in the store."""
        return layout.run_id(self.experiment, self.profile, self.seed, self.variant)

    def hashed_dict(self) -> dict[str, Any]:
        """Everything that determines the result: the config without its runtime section (and without the smoke
        marker and the point, whose settings are in the values themselves), and of the methods' tables only the
        one the run uses (the plain EBM's projector takes SimCLR's latent size, so it keeps SimCLR's): tuning
        one method never changes another arm's run."""
        values = self.model_dump(mode="json", exclude={"runtime", "smoke", "point"})
        used = "simclr" if self.crl.method == NO_ENCODER else self.crl.method
        values["crl"] = {key: value for key, value in values["crl"].items() if key not in METHODS or key == used}
        return values

    @property
    def config_hash(self) -> str:
        """First 12 hex digits of the sha256 of the canonical JSON of hashed_dict()."""
        canonical = json.dumps(self.hashed_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    @property
    def pretrain_steps(self) -> int:
        """The encoder-only steps before the EBM starts (none without an encoder)."""
        return 0 if self.crl.method == NO_ENCODER else self.crl.pretrain_iterations

    @property
    def total_steps(self) -> int:
        """Every optimizer step of the run: the encoder's pre-training steps, then train.iterations steps of both."""
        return self.pretrain_steps + self.train.iterations

    @property
    def fid_features(self) -> str:
        """The FID feature network actually used: digits-cnn for digits, Inception otherwise, unless set."""
        if self.eval.fid_features != "auto":
            return self.eval.fid_features
        return "digits-cnn" if self.data.dataset == "digits" else "inception"


def leaf_paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every dotted key of a settings model (tables recursed into)."""
    paths = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            paths |= leaf_paths(annotation, f"{prefix}{name}.")
        else:
            paths.add(f"{prefix}{name}")
    return paths


# Keys a config file or --set may give; experiment, profile and seed come from the command line.
SETTABLE_PATHS = frozenset(leaf_paths(RunConfig) - {"experiment", "profile", "seed", "smoke", "point"})
# Keys that change a run's result (a grid axis must be one: a runtime key would make two points share a run)
HASHED_PATHS = frozenset(path for path in SETTABLE_PATHS if not path.startswith("runtime."))
