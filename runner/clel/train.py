"""One CLEL training step, its state (models, EMA copies, optimizers, buffer, RNG), and the data order."""

import copy
import math
import random
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from runner.clel.augment import StrongAugmentation
from runner.clel.crl import METHODS, NO_ENCODER, BuildContext, SelfSupervisedMethod
from runner.clel.energy import LatentEnergy, ebm_loss
from runner.clel.networks import EnergyNet, power_iterate
from runner.clel.sampler import ReplaySampler
from runner.config import OptimizerConfig, RunConfig
from runner.data import ImageData, dequantize, to_unit_float
from runner.errors import Diverged


def build_ebm(cfg: RunConfig, mean: tuple[float, ...], std: tuple[float, ...]) -> EnergyNet:
    """The EBM of the config; its projector's output size follows the encoder's latent_dim."""
    e = cfg.ebm
    return EnergyNet(
        e.channels,
        e.blocks_per_stage,
        e.feature_dim,
        e.head_width,
        e.projector_width,
        cfg.crl.latent_dim,
        mean,
        std,
        use_spectral_norm=e.spectral_norm,
    )


def build_crl(cfg: RunConfig, mean: tuple[float, ...], std: tuple[float, ...]) -> SelfSupervisedMethod | None:
    """The configured self-supervised method with its encoder, on CPU (None for the plain EBM)."""
    if cfg.crl.method == NO_ENCODER:
        return None
    size = cfg.data.image_size
    context = BuildContext(size, mean, std, cfg.crl.backbone_width, StrongAugmentation(size))
    return METHODS[cfg.crl.method].build(cfg.crl.settings, context)


def lr_factor(cfg: OptimizerConfig, iterations: int, step: int) -> float:
    """Linear warm-up over warmup_iterations, then constant or cosine decay to 0 at `iterations`."""
    factor = min(1.0, (step + 1) / cfg.warmup_iterations) if cfg.warmup_iterations else 1.0
    if cfg.schedule == "cosine":
        factor *= 0.5 * (1 + math.cos(math.pi * min(step, iterations) / iterations))
    return factor


def build_optimizer(
    params: list[nn.Parameter], cfg: OptimizerConfig, batch_size: int, iterations: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """The optimizer and its per-iteration schedule."""
    lr = cfg.lr * batch_size / 256 if cfg.lr_batch_scaling else cfg.lr
    if cfg.name == "sgd":
        optimizer = torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    elif cfg.name == "adam":
        optimizer = torch.optim.Adam(params, lr=lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    else:
        optimizer = torch.optim.AdamW(params, lr=lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(cfg, iterations, step))
    return optimizer, schedule


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model for parameters; buffers (BN stats, SN vectors) copied."""
    ema_params = [p for p in ema.parameters() if p.dtype.is_floating_point]
    params = [p.detach() for p in model.parameters() if p.dtype.is_floating_point]
    torch._foreach_lerp_(ema_params, params, 1.0 - decay)
    for ema_buffer, buffer in zip(ema.buffers(), model.buffers(), strict=True):
        ema_buffer.copy_(buffer)


class DataOrder:
    """Shuffled mini-batches, a new permutation per epoch from (seed, epoch): the step alone fixes the batch."""

    def __init__(self, size: int, batch_size: int, seed: int):
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.batches_per_epoch = size // batch_size
        self._epoch, self._perm = -1, torch.empty(0, dtype=torch.long)

    def indices(self, step: int) -> torch.Tensor:
        """The dataset indices of the batch of this (0-based) step."""
        epoch, position = divmod(step, self.batches_per_epoch)
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch, self._perm = epoch, torch.randperm(self.size, generator=generator)
        return self._perm[position * self.batch_size : (position + 1) * self.batch_size]


@dataclass
class StepMetrics:
    """One step's scalars; the energy terms are batch means over the data (`_data`) and the samples (`_samples`):
    E(x) = half_f_sq - log_normalizer, kappa = beta u_norm (LatentEnergy.terms)."""

    loss: float
    loss_ebm: float
    loss_crl: float
    energy_data: float
    energy_samples: float
    latent_alignment: float
    half_f_sq_data: float
    half_f_sq_samples: float
    u_norm_data: float
    u_norm_samples: float
    kappa_data: float
    kappa_samples: float
    log_normalizer_data: float
    log_normalizer_samples: float


def capture_rng() -> dict[str, Any]:
    """Python, numpy, torch CPU and CUDA generator states."""
    name, keys, position, has_gauss, cached = np.random.get_state()
    numpy_state = (name, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached)
    state = {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of capture_rng."""
    random.setstate(state["python"])
    name, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Trainer:
    """Everything a CLEL run trains, and one training step of it (docs/ARCHITECTURE.md, "The training step")."""

    def __init__(self, cfg: RunConfig, data: ImageData, device: torch.device):
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        np.random.seed(cfg.seed)
        self.cfg, self.device = cfg, device
        self.optimized = cfg.runtime.optimized
        self.train_images = data.train.to(device)
        self.order = DataOrder(len(data.train), cfg.train.batch_size, cfg.seed)
        self.energy = LatentEnergy(cfg.energy.beta, cfg.energy.norm_direction_split, cfg.crl.latent_dim)
        self.ebm = self._place(build_ebm(cfg, data.mean, data.std))
        self.ema_ebm = copy.deepcopy(self.ebm).eval().requires_grad_(False)
        iterations, batch = cfg.train.iterations, cfg.train.batch_size
        self.ebm_optimizer, self.ebm_schedule = build_optimizer(
            list(self.ebm.parameters()), cfg.train.ebm_optimizer, batch, iterations
        )
        self.crl = build_crl(cfg, data.mean, data.std)
        self.ema_crl: SelfSupervisedMethod | None = None
        if self.crl is not None:
            self.crl = self._place(self.crl)
            self.ema_crl = copy.deepcopy(self.crl).eval().requires_grad_(False)
            self.crl_optimizer, self.crl_schedule = build_optimizer(
                list(self.crl.parameters()), cfg.crl.optimizer, batch, iterations
            )
        shape = tuple(data.train.shape[1:])
        self.sampler = ReplaySampler(cfg.sgld, shape, device, StrongAugmentation(cfg.data.image_size))
        if self.optimized:
            self.sampler.buffer = self.sampler.buffer.contiguous(memory_format=torch.channels_last)
        self.ema_decay = 0.5 ** (batch / cfg.train.ema_half_life_samples)
        self.ema_start = cfg.train.ema_half_life_samples / batch
        self.step = 0

    def _place(self, module: nn.Module) -> nn.Module:
        """Move to the device; channels-last memory format on the optimized path."""
        module = module.to(self.device)
        return module.to(memory_format=torch.channels_last) if self.optimized else module

    @property
    def uses_generated_negatives(self) -> bool:
        return self.crl is not None and self.crl.has_negatives and self.cfg.crl.use_generated_negatives

    def data_batch(self, step: int) -> torch.Tensor:
        """The step's training batch as floats in [0, 1] (dequantised if configured)."""
        images = self.train_images[self.order.indices(step).to(self.device)]
        x = dequantize(images) if self.cfg.data.dequantize else to_unit_float(images)
        return x.contiguous(memory_format=torch.channels_last) if self.optimized else x

    def autocast(self):
        """bf16 autocast when train.precision = bf16 (it changes numerics), else nothing."""
        enabled = self.cfg.train.precision == "bf16"
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=enabled)

    def marginal_energy_fn(self, ebm: EnergyNet):
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
        with self.sampling(self.ebm):
            return self.sampler.sample(self.marginal_energy_fn(self.ebm), batch_size)

    def latent_of_own_view(self, x: torch.Tensor) -> torch.Tensor:
        """The EBM's z as the reference computes it: the encoder (train mode, no gradient) on a fresh strong view."""
        with self.autocast():
            return self.crl.latent(self.crl.augment(x))

    def train_step(self) -> StepMetrics:
        """One iteration: samples by SGLD, L_ebm + L_crl, both optimizer steps, schedules, EMA."""
        step, batch = self.step, self.cfg.train.batch_size
        x = self.data_batch(step)
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
            own_view = self.cfg.crl.latent_view == "separate"
            z = self.latent_of_own_view(x) if own_view else None
            negatives = F.normalize(u_samples.detach(), dim=1) if self.uses_generated_negatives else None
            with self.autocast():
                crl_out = self.crl.loss(x, negatives)
            loss_crl = crl_out.loss
            z = crl_out.latent.float() if z is None else z
        else:
            loss_crl, z = torch.zeros((), device=self.device), torch.zeros_like(u_data)
        energy_joint = self.energy.joint(f_data, u_data, z)
        energy_data = self.energy.marginal(f_data, u_data)
        energy_samples = self.energy.marginal(f_samples, u_samples)
        loss_ebm = ebm_loss(energy_joint, energy_data, energy_samples, self.cfg.energy.alpha)
        loss = loss_ebm + loss_crl
        alignment = (F.normalize(u_data.detach().float(), dim=1) * z).sum(1).mean()
        terms_data, terms_samples = self.energy.terms(f_data, u_data), self.energy.terms(f_samples, u_samples)
        terms = [values[name] for name in terms_data for values in (terms_data, terms_samples)]
        values = torch.stack(
            [loss, loss_ebm, loss_crl, energy_data.mean(), energy_samples.mean(), alignment, *terms]
        ).tolist()
        metrics = StepMetrics(*values)
        for name, value in zip(("loss_ebm", "loss_crl", "energy_data", "energy_samples"), values[1:5], strict=True):
            if not math.isfinite(value):
                raise Diverged(f"step {step + 1}: {name} is {value}; the last good checkpoint is kept")
        self.ebm_optimizer.zero_grad(set_to_none=True)
        if self.crl is not None:
            self.crl_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.ebm_optimizer.step()
        self.ebm_schedule.step()
        decay = 0.0 if step < self.ema_start else self.ema_decay
        ema_update(self.ema_ebm, self.ebm, decay)
        if self.crl is not None:
            self.crl_optimizer.step()
            self.crl_schedule.step()
            self.crl.on_step((step + 1) / self.cfg.train.iterations)
            ema_update(self.ema_crl, self.crl, decay)
        self.step += 1
        return metrics

    def lr(self) -> dict[str, float]:
        """Current learning rates."""
        rates = {"lr_ebm": self.ebm_optimizer.param_groups[0]["lr"]}
        if self.crl is not None:
            rates["lr_crl"] = self.crl_optimizer.param_groups[0]["lr"]
        return rates

    def state_dict(self) -> dict[str, Any]:
        """The full training state: resuming from it continues bit for bit (on CPU)."""
        state = {
            "step": self.step,
            "config_hash": self.cfg.config_hash,
            "ebm": self.ebm.state_dict(),
            "ema_ebm": self.ema_ebm.state_dict(),
            "ebm_optimizer": self.ebm_optimizer.state_dict(),
            "ebm_schedule": self.ebm_schedule.state_dict(),
            "buffer": self.sampler.buffer,
            "rng": capture_rng(),
        }
        if self.crl is not None:
            state |= {
                "crl": self.crl.state_dict(),
                "ema_crl": self.ema_crl.state_dict(),
                "crl_optimizer": self.crl_optimizer.state_dict(),
                "crl_schedule": self.crl_schedule.state_dict(),
            }
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore everything state_dict() saved."""
        self.step = state["step"]
        self.ebm.load_state_dict(state["ebm"])
        self.ema_ebm.load_state_dict(state["ema_ebm"])
        self.ebm_optimizer.load_state_dict(state["ebm_optimizer"])
        self.ebm_schedule.load_state_dict(state["ebm_schedule"])
        self.sampler.buffer.copy_(state["buffer"])
        if self.crl is not None:
            self.crl.load_state_dict(state["crl"])
            self.ema_crl.load_state_dict(state["ema_crl"])
            self.crl_optimizer.load_state_dict(state["crl_optimizer"])
            self.crl_schedule.load_state_dict(state["crl_schedule"])
        restore_rng(state["rng"])
