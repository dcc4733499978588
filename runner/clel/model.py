"""CLEL as one module: the EBM, the self-supervised method (the encoder), their EMA copies, the energy and the
replay buffer, and `loss(x)`: one step's loss and metrics (docs/ARCHITECTURE.md, "The training step").

What the model declares, and the engine (runner/clel/engine.py) uses without knowing CLEL: its optimizer groups
(`optimizer_groups`), its EMA pairs (`ema_pairs`), the metrics whose non-finite value stops a run
(`GUARDED_METRICS`) and what follows an optimizer step (`after_update`). Its checkpointed state is its child
modules and its own buffers, by name.
"""

import copy
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from runner.clel.augment import StrongAugmentation
from runner.clel.encoders import NO_ENCODER, BuildContext, SelfSupervisedMethod, method_class
from runner.clel.energy import LatentEnergy, ebm_loss
from runner.clel.engine import Batches, Engine, OptimizerGroup, seed_everything
from runner.clel.networks import EnergyNet, power_iterate
from runner.clel.sampler import ReplaySampler
from runner.config import RunConfig
from runner.data import ImageData

PhaseHook = Callable[[str], Any]  # phase name -> a context manager around that phase (bench times "sgld")


@dataclass
class StepMetrics:
    """One step's scalars; the energy terms are batch means over the data (`_data`) and the samples (`_samples`):
    E(x) = half_f_sq - log_normalizer, kappa = beta u_norm (LatentEnergy.terms). An encoder-only step (before the
    EBM starts) has only the losses: the EBM's fields are None and absent from as_dict()."""

    loss: float
    loss_crl: float
    loss_ebm: float | None = None
    energy_data: float | None = None
    energy_samples: float | None = None
    latent_alignment: float | None = None
    half_f_sq_data: float | None = None
    half_f_sq_samples: float | None = None
    u_norm_data: float | None = None
    u_norm_samples: float | None = None
    kappa_data: float | None = None
    kappa_samples: float | None = None
    log_normalizer_data: float | None = None
    log_normalizer_samples: float | None = None

    def as_dict(self) -> dict[str, float]:
        return {name: value for name, value in asdict(self).items() if value is not None}


def build_ebm(cfg: RunConfig, mean: tuple[float, ...], std: tuple[float, ...]) -> EnergyNet:
    """The EBM of the config; its projector's output size follows the encoder's latent_dim."""
    e = cfg.ebm
    widths = (e.feature_dim, e.head_width, e.projector_width, cfg.crl.latent_dim)
    return EnergyNet(e.channels, e.blocks_per_stage, *widths, mean, std, use_spectral_norm=e.spectral_norm)


def build_crl(cfg: RunConfig, mean: tuple[float, ...], std: tuple[float, ...]) -> SelfSupervisedMethod | None:
    """The configured self-supervised method with its encoder, on CPU (None for the plain EBM)."""
    if cfg.crl.method == NO_ENCODER:
        return None
    size = cfg.data.image_size
    crl = cfg.crl
    context = BuildContext(size, mean, std, crl.backbone_width, crl.view_crop_min_scale, crl.view_flip)
    return method_class(cfg.crl.method).build(cfg.crl.settings, context)


def untrained_encoder(cfg: RunConfig, mean: tuple[float, ...], std: tuple[float, ...]) -> SelfSupervisedMethod | None:
    """The run's encoder as it was before its first step: the seed, then the same builds in the same order as
    CLEL's constructor (the EBM's initial weights are drawn first). It reseeds the global generators."""
    seed_everything(cfg.seed)
    build_ebm(cfg, mean, std)
    return build_crl(cfg, mean, std)


def ema_copy(module: nn.Module) -> nn.Module:
    """A frozen copy in eval mode: what the EMA of the module's weights lives in."""
    return copy.deepcopy(module).eval().requires_grad_(False)


class CLEL(nn.Module):
    """The EBM, the encoder's method, their EMA copies and the replay buffer; one training step's loss."""

    GUARDED_METRICS: ClassVar[tuple[str, ...]] = ("loss_ebm", "loss_crl", "energy_data", "energy_samples")
    LOSS_WINDOW: ClassVar[int] = 20  # the encoder's loss over this many last steps is kept (encoder health)

    def __init__(self, cfg: RunConfig, mean: tuple[float, ...], std: tuple[float, ...], image_shape, device):
        super().__init__()
        self.cfg, self.optimized = cfg, cfg.runtime.optimized
        self.energy = LatentEnergy(cfg.energy.beta, cfg.energy.norm_direction_split, cfg.crl.latent_dim)
        self.ebm = build_ebm(cfg, mean, std)
        self.ema_ebm = ema_copy(self.ebm)
        self.crl = build_crl(cfg, mean, std)
        self.ema_crl = None if self.crl is None else ema_copy(self.crl)
        self.register_buffer("buffer", torch.rand((cfg.sgld.buffer_size, *image_shape), device=device))
        if self.crl is not None:  # the method's loss of the last LOSS_WINDOW steps at step % LOSS_WINDOW, and how
            self.register_buffer("crl_losses", torch.zeros(self.LOSS_WINDOW, device=device))  # many were recorded
            self.register_buffer("crl_losses_recorded", torch.zeros((), dtype=torch.long, device=device))
        self.sampler = ReplaySampler(cfg.sgld, StrongAugmentation(cfg.data.image_size))
        self.phase_hooks: list[PhaseHook] = []
        self.to(device)
        if self.optimized:
            self.to(memory_format=torch.channels_last)
            self.buffer = self.buffer.contiguous(memory_format=torch.channels_last)

    # --- what the engine uses -------------------------------------------------------------------------
    def optimizer_groups(self) -> dict[str, OptimizerGroup]:
        """The EBM's group (from the end of the encoder's pre-training, train.iterations steps), and the encoder's
        when there is one (every step of the run)."""
        cfg = self.cfg
        ebm = OptimizerGroup(list(self.ebm.parameters()), cfg.train.ebm_optimizer, cfg.train.iterations)
        ebm.first_step = cfg.pretrain_steps
        groups = {"ebm": ebm}
        if self.crl is not None:
            groups["crl"] = OptimizerGroup(list(self.crl.parameters()), cfg.crl.optimizer, cfg.total_steps)
        return groups

    def final_crl_loss(self) -> float | None:
        """The encoder's loss averaged over its last LOSS_WINDOW steps (fewer in a shorter run); None without one."""
        if self.crl is None or int(self.crl_losses_recorded) == 0:
            return None
        return float(self.crl_losses[: min(int(self.crl_losses_recorded), self.LOSS_WINDOW)].mean())

    def ema_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        """(EMA copy, live module) pairs: what evaluation uses follows what training updates."""
        pairs = [(self.ema_ebm, self.ebm)]
        return pairs if self.crl is None else [*pairs, (self.ema_crl, self.crl)]

    def after_update(self, progress: float) -> None:
        """After the optimizer steps, with training progress in [0, 1]: the method's momentum targets."""
        if self.crl is not None:
            self.crl.on_step(progress)

    def phase(self, name: str):
        """A context manager around a phase of the step, for the registered hooks (nothing without them)."""
        stack = ExitStack()
        for hook in self.phase_hooks:
            stack.enter_context(hook(name))
        return stack if self.phase_hooks else nullcontext()

    # --- the step ----------------------------------------------------------------------------------------
    @property
    def uses_generated_negatives(self) -> bool:
        return self.crl is not None and self.crl.has_negatives and self.cfg.crl.use_generated_negatives

    def autocast(self):
        """bf16 autocast when train.precision = bf16 (it changes numerics), else nothing."""
        enabled = self.cfg.train.precision == "bf16"
        return torch.autocast(self.buffer.device.type, dtype=torch.bfloat16, enabled=enabled)

    def marginal_energy_fn(self, ebm: EnergyNet) -> Callable[[torch.Tensor], torch.Tensor]:
        """x -> E(x) for SGLD; skips the projector when the marginal does not need it."""
        if self.energy.marginal_needs_projector:
            energy = lambda x: self.energy.marginal(*ebm(x))  # noqa: E731
        else:
            energy = lambda x: self.energy.marginal(ebm.features(x))  # noqa: E731
        optimized = self.optimized

        def energy_fn(x: torch.Tensor) -> torch.Tensor:
            if optimized:
                x = x.contiguous(memory_format=torch.channels_last)
            with self.autocast():
                return energy(x)

        return energy_fn

    @contextmanager
    def sampling(self, ebm: EnergyNet) -> Iterator[None]:
        """Eval mode for SGLD (no spectral-norm power iteration); optimized: weights normalised once, frozen."""
        was_training = ebm.training
        ebm.eval()
        with ExitStack() as stack:
            stack.callback(ebm.train, was_training)
            if self.optimized:
                stack.enter_context(parametrize.cached())
                frozen = [p for p in ebm.parameters() if p.requires_grad]
                for p in frozen:
                    p.requires_grad_(False)
                stack.callback(lambda: [p.requires_grad_(True) for p in frozen])
            yield

    def draw_samples(self, batch_size: int) -> torch.Tensor:
        """Samples x~ by SGLD from the replay buffer with the current EBM."""
        with self.phase("sgld"), self.sampling(self.ebm):
            return self.sampler.sample(self.buffer, self.marginal_energy_fn(self.ebm), batch_size)

    def latent_of_own_view(self, x: torch.Tensor) -> torch.Tensor:
        """The EBM's z as the reference computes it: the encoder (train mode, no gradient) on a fresh strong view."""
        with self.autocast():
            return self.crl.latent(self.crl.augment(x))

    def _record_crl_loss(self, loss: torch.Tensor, step: int) -> None:
        self.crl_losses[step % self.LOSS_WINDOW] = loss.detach().float()
        self.crl_losses_recorded += 1

    def encoder_only_loss(self, x: torch.Tensor, step: int) -> tuple[torch.Tensor, StepMetrics]:
        """A pre-training step: the method's loss alone, no sampling, the EBM untouched."""
        self.crl.train()
        with self.autocast():
            loss = self.crl.loss(x, None).loss
        self._record_crl_loss(loss, step)
        value = loss.item()
        return loss, StepMetrics(loss=value, loss_crl=value)

    def loss(self, x: torch.Tensor, step: int) -> tuple[torch.Tensor, StepMetrics]:
        """The loss of one batch x at this step and its metrics: L_crl alone during the encoder's pre-training,
        then L_ebm + L_crl (with the batch's SGLD samples)."""
        if step < self.cfg.pretrain_steps:
            return self.encoder_only_loss(x, step)
        batch = len(x)
        self.ebm.train()
        power_iterate(self.ebm, self.cfg.ebm.power_iterations - 1)  # the last one runs in the forward below
        x_samples = self.draw_samples(batch)
        self.ebm.train()
        with self.autocast():
            f, u = self.ebm(torch.cat([x, x_samples]))
        f_data, f_samples = f.split(batch)
        u_data, u_samples = u.split(batch)
        if self.crl is not None:
            self.crl.train()
            z = self.latent_of_own_view(x) if self.cfg.crl.latent_view == "separate" else None
            negatives = F.normalize(u_samples.detach(), dim=1) if self.uses_generated_negatives else None
            with self.autocast():
                crl_out = self.crl.loss(x, negatives)
            loss_crl = crl_out.loss
            self._record_crl_loss(loss_crl, step)
            z = crl_out.latent.float() if z is None else z
        else:
            loss_crl, z = torch.zeros((), device=x.device), torch.zeros_like(u_data)
        energy_joint = self.energy.joint(f_data, u_data, z)
        energy_data = self.energy.marginal(f_data, u_data)
        energy_samples = self.energy.marginal(f_samples, u_samples)
        loss_ebm = ebm_loss(energy_joint, energy_data, energy_samples, self.cfg.energy.alpha)
        loss = loss_ebm + loss_crl
        alignment = (F.normalize(u_data.detach().float(), dim=1) * z).sum(1).mean()
        terms_data, terms_samples = self.energy.terms(f_data, u_data), self.energy.terms(f_samples, u_samples)
        terms = [values[name] for name in terms_data for values in (terms_data, terms_samples)]
        values = [loss, loss_crl, loss_ebm, energy_data.mean(), energy_samples.mean(), alignment, *terms]
        return loss, StepMetrics(*torch.stack(values).tolist())


def training_engine(cfg: RunConfig, data: ImageData, device: torch.device) -> Engine:
    """The run's model and its engine, seeded: the same config and seed give the same weights, bit for bit."""
    seed_everything(cfg.seed)
    model = CLEL(cfg, data.mean, data.std, tuple(data.train.shape[1:]), device)
    train = cfg.train
    batches = Batches(data.train.to(device), train.batch_size, cfg.seed, cfg.data.dequantize, model.optimized)
    return Engine(model, batches, train, cfg.config_hash, cfg.total_steps)
