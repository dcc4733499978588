"""Evaluation of a trained model with its EMA copies: FID of fresh SGLD samples and OOD AUROC per set."""

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.nn.utils import parametrize

from runner.clel.model import CLEL, untrained_encoder
from runner.data import ImageData, to_unit_float
from runner.metrics.encoder_health import chance_loss, encoder_health, pixel_probe
from runner.metrics.fid import (
    FeaturesUnavailable,
    frechet_distance,
    load_feature_extractor,
    reference_statistics,
    statistics,
)
from runner.metrics.ood import auroc
from runner.result import EncoderHealth, is_encoder_collapsed
from runner.run.bars import progress_bar
from runner.run.inputs import FidWeights


@dataclass
class Evaluation:
    fid: float | None
    fid_init: float | None
    fid_features: str
    fid_protocol: str
    auroc: dict[str, dict[str, float | None]]
    samples: torch.Tensor
    encoder: EncoderHealth | None = None
    notes: list[str] = field(default_factory=list)


@torch.no_grad()
def _batched(fn: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, batch: int, device) -> np.ndarray:
    out = [fn(to_unit_float(images[i : i + batch]).to(device)).double().cpu() for i in range(0, len(images), batch)]
    return torch.cat(out).numpy()


def generate_samples(model: CLEL, start: torch.Tensor, passes: int, batch: int, progress: bool) -> torch.Tensor:
    """`passes` rounds of the training sampler (re-init, augmentation, SGLD) over a copy of `start`, EMA EBM."""
    buffer, count = start.clone(), len(start)
    energy_fn = model.marginal_energy_fn(model.ema_ebm)
    total = passes * ((count + batch - 1) // batch)
    bar = progress_bar(total=total, desc="sampling", disable=not progress, leave=False)
    with model.sampling(model.ema_ebm), bar:
        for _ in range(passes):
            for first in range(0, count, batch):
                rows = slice(first, first + batch)
                buffer[rows] = model.sampler.advance(buffer[rows], energy_fn)
                bar.update()
    return buffer


def ood_scores(model: CLEL, images: torch.Tensor) -> dict[str, np.ndarray]:
    """Marginal score -E(x) and joint score -E(x, z(x)) (z from the un-augmented x, beta = eval.joint_beta)."""
    ebm, crl, energy = model.ema_ebm, model.ema_crl, model.energy
    batch, device = model.cfg.eval.batch_size, model.buffer.device

    def marginal(x: torch.Tensor) -> torch.Tensor:
        return -energy.marginal(*ebm(x))

    scores = {"marginal": _batched(marginal, images, batch, device)}
    if crl is not None:

        def joint(x: torch.Tensor) -> torch.Tensor:
            f, u = ebm(x)
            return -energy.joint(f, u, crl.latent(x), beta=model.cfg.eval.joint_beta)

        scores["joint"] = _batched(joint, images, batch, device)
    return scores


def encoder_report(model: CLEL, data: ImageData) -> EncoderHealth | None:
    """The EMA encoder's health beside the untrained encoder's (this method and seed) and the pixels' probe, the
    method's loss over its last steps against chance, and the collapse flag; None without an encoder."""
    if model.ema_crl is None:
        return None
    batch, device = model.cfg.eval.batch_size, model.buffer.device
    trained = encoder_health(model.ema_crl, data, batch)
    rng = torch.get_rng_state()
    untrained = untrained_encoder(model.cfg, data.mean, data.std).to(device)
    torch.set_rng_state(rng)
    before = encoder_health(untrained, data, batch)
    final, chance = model.final_crl_loss(), chance_loss(model.cfg)
    return EncoderHealth(
        probe_h=trained.probe_h,
        probe_z=trained.probe_z,
        mean_cos_z=trained.mean_cos_z,
        untrained_probe_h=before.probe_h,
        untrained_probe_z=before.probe_z,
        untrained_mean_cos_z=before.mean_cos_z,
        pixel_probe=pixel_probe(data),
        final_loss=final,
        chance_loss=chance,
        collapsed=is_encoder_collapsed(trained.probe_z, before.probe_z, final, chance),
    )


def evaluate(
    model: CLEL, data: ImageData, ood: dict[str, torch.Tensor], log: Callable[[str], None], weights: FidWeights
) -> Evaluation:
    """FID (with fid_init of the initial noise buffer) and AUROC of both scores for every OOD set.

    For Inception features, `weights` holds the verified file or why there is none (FID then missing).
    """
    cfg, device = model.cfg, model.buffer.device
    ev, progress = cfg.eval, cfg.runtime.progress
    notes: list[str] = []
    features = cfg.fid_features
    protocol = (
        f"{ev.fid_samples} samples, {ev.fid_sgld_passes} rounds of the training sampler (re-init, augmentation, "
        f"{cfg.sgld.steps} SGLD steps) from uniform noise, "
        f"EMA EBM, {features} features, against the {data.name} train split"
    )
    fid = fid_init = None
    generator_state = torch.get_rng_state()
    torch.manual_seed(cfg.seed + 1)  # evaluation draws its own noise: it does not depend on where training stopped
    try:
        if weights.unavailable:
            raise FeaturesUnavailable(weights.unavailable)
        extractor = load_feature_extractor(features, device, weights.path)
    except FeaturesUnavailable as err:
        extractor = None
        notes.append(f"fid missing: {err}")
        log(f"FID: {err}; fid is recorded as missing")
    noise = torch.rand((ev.fid_samples, *data.train.shape[1:]), device=device)
    samples = generate_samples(model, noise, ev.fid_sgld_passes, ev.batch_size, progress)
    if extractor is not None:
        reference = reference_statistics(f"{data.name}{data.image_size}-train", to_unit_float(data.train), extractor)
        fid_init = frechet_distance(*statistics(extractor(noise)), *reference)  # noise: singular by nature
        fid = frechet_distance(*statistics(extractor(samples)), *reference, notes=notes)
    results: dict[str, dict[str, float | None]] = {}
    with torch.no_grad(), parametrize.cached():
        in_scores = ood_scores(model, data.test)
        for name, images in ood.items():
            out_scores = ood_scores(model, images)
            results[name] = {
                kind: auroc(in_scores[kind], out_scores[kind]) if kind in in_scores else None
                for kind in ("marginal", "joint")
            }
    log(f"encoder health of {cfg.run_id}: linear probes on the {data.name} labels")
    encoder = encoder_report(model, data)
    torch.set_rng_state(generator_state)
    if model.crl is None:
        notes.append("joint score n/a: no encoder (plain EBM)")
    elif encoder.probe_z is None:
        notes.append(f"encoder probes n/a: {data.name} has no labels")
    return Evaluation(fid, fid_init, features, protocol, results, samples[: ev.sample_grid].cpu(), encoder, notes)
