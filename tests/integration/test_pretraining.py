"""The encoder's pre-training (crl.pretrain_iterations): encoder-only steps before the EBM's train.iterations,
the EBM untouched until then, its schedule counted from there, and exact resume across the boundary."""

import pytest
import torch

from runner.clel.engine import lr_factor
from runner.clel.model import training_engine
from tests.integration.test_trainer import SIZES, assert_engines_equal, round_trip
from tests.support import tiny_cfg

CPU = torch.device("cpu")
pytestmark = pytest.mark.usefixtures("one_thread")


def engine(digits, experiment: str = "baseline", **overrides):
    settings = SIZES | {"crl.pretrain_iterations": 3, "train.iterations": 4, "train.ema_half_life_samples": 16.0}
    return training_engine(tiny_cfg(experiment, overrides=settings | overrides), digits, CPU)


def ebm_state(t) -> dict[str, torch.Tensor]:
    state = {f"ebm.{k}": v.clone() for k, v in t.model.ebm.state_dict().items()}
    state |= {f"ema_ebm.{k}": v.clone() for k, v in t.model.ema_ebm.state_dict().items()}
    return state | {"buffer": t.model.buffer.clone()}


@pytest.mark.parametrize("experiment", ["baseline", "moco", "byol", "mae"])
def test_pretraining_steps_train_the_encoder_alone(digits, experiment):
    t = engine(digits, experiment)
    assert t.iterations == 3 + 4
    ebm_before = ebm_state(t)
    encoder_before = {k: v.clone() for k, v in t.model.crl.state_dict().items()}
    metrics = [t.train_step() for _ in range(3)]
    after = ebm_state(t)
    assert all(torch.equal(ebm_before[k], after[k]) for k in after)  # the EBM, its EMA and the buffer untouched
    assert t.optimizers["ebm"].state == {}  # Adam never stepped the EBM
    changed = [k for k, v in t.model.crl.state_dict().items() if not torch.equal(v, encoder_before[k])]
    assert changed
    assert all(set(m.as_dict()) == {"loss", "loss_crl"} and m.loss == m.loss_crl for m in metrics)
    coupled = t.train_step()  # step 4: the first of both
    assert coupled.energy_data is not None and coupled.loss_ebm is not None
    assert not torch.equal(t.model.ebm.state_dict()["head.0.weight"], ebm_before["ebm.head.0.weight"])


def test_the_ebm_schedule_starts_when_the_pretraining_ends(digits):
    t = engine(digits, "baseline", **{"train.ebm_optimizer.warmup_iterations": 2})
    base = t.model.cfg.train.ebm_optimizer.lr
    encoder = t.model.cfg.crl.optimizer
    rates = []
    for _ in range(6):
        rates.append(t.lr())
        t.train_step()
    assert [r["lr_ebm"] for r in rates] == pytest.approx([0, 0, 0, base / 2, base, base])
    # the encoder's cosine spans every step of the run (7), from step 0
    assert [r["lr_crl"] for r in rates] == pytest.approx([encoder.lr * lr_factor(encoder, 7, s) for s in range(6)])


@pytest.mark.parametrize("stop", [1, 3, 5])
def test_resume_across_the_pretraining_is_bit_identical(digits, stop):
    straight = engine(digits, "moco")
    expected = [straight.train_step() for _ in range(7)]
    first = engine(digits, "moco")
    metrics = [first.train_step() for _ in range(stop)]
    state = round_trip(first.state_dict())
    resumed = engine(digits, "moco")
    resumed.load_state_dict(state)
    metrics += [resumed.train_step() for _ in range(7 - stop)]
    assert metrics == expected
    assert_engines_equal(resumed, straight)


def test_the_encoders_loss_over_its_last_steps_is_kept_in_the_checkpoint(digits):
    t = engine(digits, "baseline")
    window = t.model.LOSS_WINDOW
    assert t.model.final_crl_loss() is None
    losses = [t.train_step().loss_crl for _ in range(5)]
    assert t.model.final_crl_loss() == pytest.approx(sum(losses) / 5, rel=1e-6)
    assert "crl_losses" in t.state_dict() and t.state_dict()["crl_losses"].shape == (window,)
    plain = engine(digits, "plain_ebm")
    assert plain.model.final_crl_loss() is None and "crl_losses" not in plain.state_dict()
    assert plain.iterations == 4  # no encoder: no pre-training
