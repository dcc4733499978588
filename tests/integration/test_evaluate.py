"""Evaluation (runner.run.evaluate): the EMA models are what is scored and sampled, the scores' signs, and the joint
score's z taken from the un-augmented image, each against a hand computation."""

import copy

import pytest
import torch
import torch.nn.functional as F

from runner.clel.model import CLEL, training_engine
from runner.data import to_unit_float
from runner.run.evaluate import generate_samples, ood_scores
from tests.support import tiny_cfg

SIZES = {"sgld.steps": 3, "sgld.buffer_size": 64, "train.batch_size": 16, "eval.batch_size": 7}


@pytest.fixture(scope="module")
def baseline(digits) -> CLEL:
    return trained(digits)


def trained(digits, experiment: str = "baseline") -> CLEL:
    """A model after two training steps whose live models then move away from their EMA copies."""
    cfg = tiny_cfg(experiment, overrides=SIZES)
    engine = training_engine(cfg, digits, torch.device("cpu"))
    engine.train_step()
    engine.train_step()
    t = engine.model
    with torch.no_grad():
        for module in (t.ebm, t.crl):
            for p in module.parameters() if module is not None else []:
                p.add_(torch.randn_like(p))
    return t


def test_marginal_score_is_minus_half_the_squared_norm_of_the_ema_ebms_features(digits, baseline):
    t = baseline
    images = digits.test[:20]
    x = to_unit_float(images)
    with torch.no_grad():
        expected = -0.5 * t.ema_ebm.features(x).double().pow(2).sum(dim=1)
        live = -0.5 * t.ebm.features(x).double().pow(2).sum(dim=1)
    scores = ood_scores(t, images)
    assert scores["marginal"] == pytest.approx(expected.numpy(), rel=1e-6)
    assert not scores["marginal"] == pytest.approx(live.numpy(), rel=1e-3)  # the live EBM is not what is scored
    assert (scores["marginal"] <= 0).all()  # a score is minus an energy that is >= 0: higher = more in-distribution


def test_joint_score_uses_the_ema_encoders_latent_of_the_unaugmented_image(digits, baseline, monkeypatch):
    t = baseline
    images = digits.test[:20]
    x = to_unit_float(images)
    beta = t.cfg.eval.joint_beta
    ema_crl = copy.deepcopy(t.ema_crl)

    def no_augmentation(_):
        raise AssertionError("the joint score must not augment")

    monkeypatch.setattr(t.ema_crl.augment, "forward", no_augmentation)
    with torch.no_grad():
        f, u = t.ema_ebm(x)
        z = F.normalize(ema_crl.embed(x), dim=1)  # eval mode: BatchNorm's running statistics
        expected = -(0.5 * f.pow(2).sum(dim=1) - beta * (F.normalize(u, dim=1) * z).sum(dim=1))
    scores = ood_scores(t, images)
    assert scores["joint"] == pytest.approx(expected.double().numpy(), rel=1e-5, abs=1e-8)
    assert not scores["joint"] == pytest.approx(scores["marginal"], rel=1e-6)  # z matters at beta = 0.1


def test_plain_ebm_has_no_joint_score(digits):
    t = trained(digits, "plain_ebm")
    assert set(ood_scores(t, digits.test[:5])) == {"marginal"}


def test_samples_for_fid_come_from_the_ema_ebm_only(baseline):
    t = baseline
    calls = {"ema": 0, "live": 0}
    hooks = [
        t.ema_ebm.backbone.register_forward_hook(lambda *_: calls.__setitem__("ema", calls["ema"] + 1)),
        t.ebm.backbone.register_forward_hook(lambda *_: calls.__setitem__("live", calls["live"] + 1)),
    ]
    start = torch.rand(10, 3, 16, 16)
    samples = generate_samples(t, start, passes=2, batch=4, progress=False)
    for hook in hooks:
        hook.remove()
    assert samples.shape == start.shape and not torch.equal(samples, start)
    assert calls["live"] == 0 and calls["ema"] == 2 * 3 * t.cfg.sgld.steps  # passes x batches x SGLD steps
    assert t.ema_ebm.training is False and t.ebm.training is True  # modes restored after sampling
