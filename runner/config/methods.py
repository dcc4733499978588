"""The self-supervised methods' config tables (crl.<name>), with their defaults: torch-free, so that the config
resolves and validates without importing the networks. Each method in runner/clel/encoders/ names its Settings here.
"""

from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import Field, model_validator

from runner.config.sections import OptimizerConfig, Section

NO_ENCODER = "none"  # crl.method of the plain EBM: no encoder, no latent


class MethodSettings(Section):
    """A method's table in the config (crl.<name>); each method declares its fields with their defaults."""

    has_negatives: ClassVar[bool] = False  # whether the EBM's samples can serve as extra negatives (SimCLR, MoCo)
    optimizer: OptimizerConfig

    @model_validator(mode="before")
    @classmethod
    def _optimizer_over_its_defaults(cls, data: Any) -> Any:
        """A partial optimizer table (`crl.mae.optimizer.lr = 1e-3`) changes those keys of the method's default."""
        if isinstance(data, dict) and isinstance(data.get("optimizer"), dict):
            default = cls.model_fields["optimizer"].get_default(call_default_factory=True)
            return {**data, "optimizer": default.model_dump() | data["optimizer"]}
        return data

    def latent_size(self) -> int:
        """The dimension of the unit latent z the method gives the EBM (its `latent_dim` unless it says otherwise)."""
        return self.latent_dim


def sgd(lr: float = 0.03) -> OptimizerConfig:
    """CLEL's encoder optimizer: SGD, momentum 0.9, weight decay 5e-4, cosine decay."""
    return OptimizerConfig(
        name="sgd",
        lr=lr,
        momentum=0.9,
        weight_decay=5e-4,
        betas=[0.9, 0.999],
        warmup_iterations=0,
        schedule="cosine",
        lr_batch_scaling=False,
    )


def optimizer_field(default: OptimizerConfig) -> OptimizerConfig:
    """A method's optimizer setting with its default."""
    return Field(default_factory=lambda: default)


class SimCLRSettings(MethodSettings):
    """crl.simclr: CLEL's encoder (projector 512-2048-BN-ReLU-128, temperature 0.2, SGD 0.03 cosine)."""

    projector_hidden: int = Field(default=2048, ge=1, le=16384)
    latent_dim: int = Field(default=128, ge=2, le=4096)
    temperature: float = Field(default=0.2, gt=0, le=100)
    has_negatives: ClassVar[bool] = True
    optimizer: OptimizerConfig = optimizer_field(sgd())


class MoCoSettings(MethodSettings):
    """crl.moco: projector 512-2048-ReLU-128, queue 4096, temperature 0.2, key momentum 0.99 -> 0.999 cosine."""

    projector_hidden: int = Field(default=2048, ge=1, le=16384)
    latent_dim: int = Field(default=128, ge=2, le=4096)
    temperature: float = Field(default=0.2, gt=0, le=100)
    queue_size: int = Field(default=4096, ge=1, le=10**6)
    momentum_start: float = Field(default=0.99, ge=0, le=1)
    momentum_end: float = Field(default=0.999, ge=0, le=1)
    projector_batch_norm: bool = False  # MoCo v2's projector has none; see docs/FIDELITY.md for the tiny profile
    has_negatives: ClassVar[bool] = True
    optimizer: OptimizerConfig = optimizer_field(sgd())


class BYOLSettings(MethodSettings):
    """crl.byol: projector 512-4096-BN-ReLU-128, predictor 128-4096-BN-ReLU-128, target momentum 0.99 -> 1.0."""

    projector_hidden: int = Field(default=4096, ge=1, le=16384)
    predictor_hidden: int = Field(default=4096, ge=1, le=16384)
    latent_dim: int = Field(default=128, ge=2, le=4096)
    momentum_start: float = Field(default=0.99, ge=0, le=1)
    momentum_end: float = Field(default=1.0, ge=0, le=1)
    optimizer: OptimizerConfig = optimizer_field(sgd())


class MAESettings(MethodSettings):
    """crl.mae: a ViT-S (patch 4, width 384, depth 12, 6 heads), a 192-d decoder of depth 4, mask 0.75, AdamW.

    The latent z is the normalised mean of the encoder's patch tokens, so its size is `width`.
    """

    patch_size: int = Field(default=4, ge=1, le=64)
    width: int = Field(default=384, ge=4, le=4096)
    depth: int = Field(default=12, ge=1, le=64)
    heads: int = Field(default=6, ge=1, le=64)
    decoder_width: int = Field(default=192, ge=4, le=4096)  # 3 heads of 64, as the encoder's 6 heads of 64
    decoder_depth: int = Field(default=4, ge=1, le=64)
    mask_ratio: float = Field(default=0.75, gt=0, lt=1)
    # z = the mean token standardised per dimension before it is normalised (in training by the batch, in
    # evaluation by the running statistics of un-augmented training images): the mean tokens share one large
    # direction (docs/ENCODERS.md); false = the raw mean token
    latent_standardized: bool = True
    optimizer: OptimizerConfig = optimizer_field(
        OptimizerConfig(
            name="adamw",
            lr=1.5e-4,
            momentum=0.0,
            weight_decay=0.05,
            betas=[0.9, 0.95],
            warmup_iterations=0,
            schedule="cosine",
            lr_batch_scaling=True,
        )
    )

    def latent_size(self) -> int:
        return self.width

    @model_validator(mode="after")
    def _shapes(self) -> "MAESettings":
        if self.width % 4 or self.decoder_width % 4:
            raise ValueError("crl.mae: width and decoder_width must be multiples of 4 (2-D sine-cosine positions)")
        if self.width % self.heads:
            raise ValueError(f"crl.mae: heads = {self.heads} does not divide width = {self.width}")
        if self.decoder_width % decoder_heads(self.heads):
            raise ValueError(
                f"crl.mae: the decoder's {decoder_heads(self.heads)} heads do not divide decoder_width = "
                f"{self.decoder_width}"
            )
        return self


def decoder_heads(heads: int) -> int:
    """The decoder has half the encoder's attention heads (at least one)."""
    return max(1, heads // 2)


@dataclass(frozen=True)
class Method:
    """A self-supervised method: its config table and its class, named as "module:Class" in runner/clel/encoders/
    and imported only when a model is built (this layer stays torch-free)."""

    settings: type[MethodSettings]
    implementation: str


# crl.method -> the method: the one registry. Adding a method: its settings class above, its file in
# runner/clel/encoders/ (a SelfSupervisedMethod subclass), and one line here.
METHODS: dict[str, Method] = {
    "simclr": Method(SimCLRSettings, "runner.clel.encoders.simclr:SimCLR"),
    "moco": Method(MoCoSettings, "runner.clel.encoders.moco:MoCo"),
    "byol": Method(BYOLSettings, "runner.clel.encoders.byol:BYOL"),
    "mae": Method(MAESettings, "runner.clel.encoders.mae:MAE"),
}
