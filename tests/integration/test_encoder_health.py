"""Encoders that learn (docs/ENCODERS.md): the untrained encoder a run compares with, the causes of the collapsed
starts (MoCo's projector, MAE's mean token) and their fixes, MAE's learning rate as configured, each method alone
learning on the digits, and the health a run records."""

import numpy as np
import pytest
import torch

from runner.clel.engine import build_optimizer
from runner.clel.model import build_crl, training_engine, untrained_encoder
from runner.config import ExperimentsFile
from runner.data import to_unit_float
from runner.metrics.encoder_health import chance_loss, encoder_health
from runner.metrics.probe import mean_pairwise_cosine
from runner.run.evaluate import encoder_report
from tests.support import ROOT, tiny_cfg

CPU = torch.device("cpu")
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("experiment", ["baseline", "moco", "byol", "mae"])
def test_the_untrained_encoder_is_the_runs_encoder_before_its_first_step(digits, experiment):
    cfg = tiny_cfg(experiment)
    engine = training_engine(cfg, digits, CPU)
    rebuilt = untrained_encoder(cfg, digits.mean, digits.std)
    initial, again = engine.model.crl.state_dict(), rebuilt.state_dict()
    assert initial.keys() == again.keys()
    assert all(torch.equal(initial[k], again[k]) for k in initial)


def train_mode_cosine(method, images: torch.Tensor) -> float:
    """The mean cosine of z as the method's loss sees it: train mode, batch statistics."""
    method.train()
    with torch.no_grad():
        return mean_pairwise_cosine(method.embed(to_unit_float(images)).double().numpy())


@pytest.mark.parametrize(
    ("experiment", "overrides", "spread"),
    [
        ("moco", {"crl.moco.projector_batch_norm": False}, False),  # MoCo v2's projector: one direction
        ("moco", {"crl.moco.projector_batch_norm": True}, True),  # the tiny profile's
        ("baseline", {}, True),  # SimCLR and BYOL have a BatchNorm in their projectors
        ("byol", {}, True),
        ("mae", {"crl.mae.latent_standardized": False}, False),  # the raw mean token
        ("mae", {}, True),  # standardised per dimension with the statistics of un-augmented images
    ],
)
def test_an_untrained_encoders_latents_are_spread_where_its_features_are_centred(digits, experiment, overrides, spread):
    """ReLU-pooled ResNet features (and MAE's mean tokens) share one large direction; a projector without
    normalisation keeps it, so every image starts with the same z and InfoNCE has nothing to pull apart."""
    torch.manual_seed(0)
    method = build_crl(tiny_cfg(experiment, overrides=overrides), digits.mean, digits.std)
    cosine = train_mode_cosine(method, digits.test[:256])
    assert (cosine < 0.5) if spread else (cosine > 0.7), cosine
    features = method.representation(to_unit_float(digits.test[:256])).detach().double().numpy()
    assert mean_pairwise_cosine(features) > 0.7  # the cause: the features the projector reads are one direction


def effective_lrs(cfg, steps: list[int]) -> list[float]:
    group = cfg.crl.optimizer
    optimizer, schedule = build_optimizer(
        [torch.nn.Parameter(torch.zeros(1))], group, cfg.train.batch_size, cfg.total_steps
    )
    rates = []
    for step in range(max(steps) + 1):
        if step in steps:
            rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    return rates


def test_maes_learning_rate_as_configured():
    files = ExperimentsFile(ROOT / "experiments.toml")
    paper = files.resolve("mae", "paper", 0)
    # MAE's rule: base lr 1.5e-4 x batch / 256; at CLEL's batch of 64 that is 3.75e-5, cosine to 0, no warm-up
    assert effective_lrs(paper, [0])[0] == pytest.approx(1.5e-4 * 64 / 256) == pytest.approx(3.75e-5)
    tiny = files.resolve("mae", "tiny", 0)
    # the tiny profile: 1.5e-3 unscaled, a linear warm-up over 50 steps, then the cosine over all the run's steps
    # (the encoder-only ones and train.iterations)
    steps = tiny.total_steps
    rates = effective_lrs(tiny, [0, 49, steps // 2])
    assert rates[0] == pytest.approx(1.5e-3 / 50)
    assert rates[1] == pytest.approx(1.5e-3 * 0.5 * (1 + np.cos(np.pi * 49 / steps)))
    assert rates[2] == pytest.approx(1.5e-3 * 0.5)


# each method's encoder-only steps on the digits, and what they must show: (steps, the loss at most this fraction
# of chance, the probe on z at least this much above the untrained encoder's, the mean cosine of z at most)
ALONE = {
    "baseline": (150, 0.95, 0.03, None),
    "moco": (300, 0.97, 0.03, 0.5),
    "byol": (300, None, 0.03, None),
    "mae": (150, 0.7, -0.1, 0.5),  # an untrained ViT's mean token already probes at 0.95; MAE's rises late
}


@pytest.mark.slow
@pytest.mark.parametrize("experiment", list(ALONE))
def test_each_method_alone_learns_on_the_digits(digits, experiment):
    """The tiny profile's encoder-only steps (mid-schedule: the encoder's cosine spans the whole run): the loss
    falls below its chance level (where the method has one), the probe on z rises above the untrained encoder's
    and z spreads. Each encoder's health at the end of a run is in its result.json (the evidence sweep)."""
    steps, loss_fraction, probe_gain, max_cosine = ALONE[experiment]
    cfg = tiny_cfg(experiment, overrides={"train.batch_size": 64, "crl.pretrain_iterations": steps})
    engine = training_engine(cfg, digits, CPU)
    before = encoder_health(engine.model.crl, digits)
    for _ in range(steps):
        engine.train_step()
    after = encoder_health(engine.model.crl, digits)
    chance = chance_loss(cfg, negatives=0)  # no generated negatives before the EBM starts
    if loss_fraction is not None:
        assert engine.model.final_crl_loss() < loss_fraction * chance
    assert after.probe_z > before.probe_z + probe_gain, (before, after)
    if max_cosine is not None:  # as the loss and the EBM see z in training (train mode: batch statistics)
        assert train_mode_cosine(engine.model.crl, digits.test[:256]) < max_cosine


def test_a_runs_encoder_report_compares_with_the_untrained_encoder_and_the_pixels(digits):
    engine = training_engine(tiny_cfg("baseline", overrides={"crl.pretrain_iterations": 2}), digits, CPU)
    for _ in range(2):
        engine.train_step()
    report = encoder_report(engine.model, digits)
    untrained = encoder_health(untrained_encoder(engine.model.cfg, digits.mean, digits.std), digits)
    assert (report.untrained_probe_z, report.untrained_mean_cos_z) == (untrained.probe_z, untrained.mean_cos_z)
    assert report.pixel_probe == 345 / 360
    ema = encoder_health(engine.model.ema_crl, digits)
    assert (report.probe_h, report.probe_z, report.mean_cos_z) == (ema.probe_h, ema.probe_z, ema.mean_cos_z)
    assert report.final_loss == engine.model.final_crl_loss()
    assert report.chance_loss == chance_loss(engine.model.cfg)
    assert report.collapsed is (
        report.probe_z <= report.untrained_probe_z or report.final_loss >= 0.98 * report.chance_loss
    )
    assert encoder_report(training_engine(tiny_cfg("plain_ebm"), digits, CPU).model, digits) is None
