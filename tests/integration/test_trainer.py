"""The model and its engine with every experiment: the EBM's projector follows the method's latent_dim, the
plain-EBM control, the coupled energy in training, exact resume of each method's state, the replay buffer's start
and a non-finite energy stopping a step (docs/ARCHITECTURE.md)."""

import copy
import dataclasses
import io

import pytest
import torch
import torch.nn.functional as F

from runner.clel.encoders.momentum import cosine_momentum
from runner.clel.engine import Engine
from runner.clel.model import CLEL, StepMetrics, training_engine
from runner.clel.vmf import log_vmf_normalizer
from runner.data import load_digits
from runner.errors import Diverged
from tests.support import tiny_cfg
from tests.support.runs import assert_states_equal

ALL_EXPERIMENTS = ["baseline", "byol", "moco", "mae", "no_generated_negatives", "no_norm_split", "plain_ebm"]
# smaller than tiny_cfg: the resume test counts MoCo queue positions in these batches
SIZES = {"sgld.steps": 2, "train.batch_size": 8, "sgld.buffer_size": 32, "crl.moco.queue_size": 32}
CPU = torch.device("cpu")

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(digits):
    return digits


def engine(data, experiment: str, overrides: dict | None = None) -> Engine:
    return training_engine(tiny_cfg(experiment, overrides=SIZES | (overrides or {})), data, CPU)


# --- the projector follows the method ----------------------------------------------------------


@pytest.mark.parametrize(
    "experiment,overrides,latent_dim",
    [
        ("baseline", {"crl.simclr.latent_dim": 48}, 48),
        ("moco", {"crl.moco.latent_dim": 40}, 40),
        ("byol", {"crl.byol.latent_dim": 24}, 24),
        ("mae", {}, 64),  # the tiny MAE's width
        ("mae", {"crl.mae.width": 32}, 32),
    ],
)
def test_ebm_projector_output_follows_the_methods_latent_dim(data, experiment, overrides, latent_dim):
    t = engine(data, experiment, overrides)
    m = t.model
    assert m.cfg.crl.latent_dim == latent_dim
    if experiment == "mae":
        assert m.cfg.crl.mae.width == latent_dim
    assert m.crl.latent_dim == latent_dim
    assert m.ebm.projector[-1].out_features == latent_dim
    assert m.ema_ebm.projector[-1].out_features == latent_dim
    assert m.energy.latent_dim == latent_dim
    x = t.batches(0)
    f, u = m.ebm(x)
    assert u.shape == (8, latent_dim) and m.crl.latent(x).shape == (8, latent_dim)
    metrics = t.train_step()  # the joint energy pairs u with the method's z
    assert torch.isfinite(torch.tensor(dataclasses.astuple(metrics))).all()


# --- plain_ebm: the control without latent guidance -------------------------------------------


def test_plain_ebm_has_no_encoder_and_its_joint_energy_is_its_marginal(data):
    t = engine(data, "plain_ebm")
    model = t.model
    assert model.cfg.crl.method == "none"
    assert model.crl is None and model.ema_crl is None
    assert model.cfg.energy.beta == 0.0 and model.energy.beta == 0.0
    assert not model.uses_generated_negatives
    assert not model.energy.marginal_needs_projector
    metrics = [t.train_step() for _ in range(2)]
    for m in metrics:
        assert m.loss_crl == 0.0
        assert m.loss == m.loss_ebm
        assert m.latent_alignment == 0.0
    assert t.step == 2
    state = t.state_dict()
    assert not {"crl", "ema_crl", "crl_optimizer", "crl_schedule"} & set(state)
    with torch.no_grad():
        f, u = model.ebm(t.batches(2))
    for z in (torch.zeros_like(u), F.normalize(torch.randn_like(u), dim=1), torch.randn_like(u)):
        assert torch.equal(model.energy.joint(f, u, z), model.energy.marginal(f, u))
    assert torch.equal(model.energy.marginal(f, u), 0.5 * f.pow(2).sum(dim=1))


# --- the coupled energy in training ------------------------------------------------------------


@pytest.mark.parametrize(
    "experiment,split,needs_projector", [("no_norm_split", False, True), ("baseline", True, False)]
)
def test_coupled_energy_in_training(data, experiment, split, needs_projector):
    t = engine(data, experiment)
    m = t.model
    assert m.cfg.energy.norm_direction_split is split
    assert m.energy.norm_direction_split is split
    assert m.energy.marginal_needs_projector is needs_projector
    ebm = copy.deepcopy(m.ebm).eval()  # eval: no spectral-norm power iteration, every call the same network
    with torch.no_grad():
        ebm.projector[-1].weight.mul_(1e6)  # beta ||u|| of order 0.1, so that log Phi_d(beta ||u||) shows
    calls = []
    ebm.projector.register_forward_hook(lambda *_: calls.append(1))
    x = t.batches(0)
    with torch.no_grad():
        sgld_energy = m.marginal_energy_fn(ebm)(x)  # what SGLD descends
        assert len(calls) == int(needs_projector)
        f, u = ebm(x)
    kappa = m.cfg.energy.beta * u.norm(dim=1)
    assert kappa.min() > 0.01
    norm_part = 0.5 * f.pow(2).sum(dim=1)
    assert torch.equal(sgld_energy, m.energy.marginal(f, u))
    if needs_projector:
        torch.testing.assert_close(sgld_energy, norm_part - log_vmf_normalizer(kappa, u.shape[1]))
        assert (sgld_energy - norm_part).abs().min() > 0  # the -log Phi_d(beta ||u||) term is there
    else:
        assert torch.equal(sgld_energy, norm_part)
    assert torch.isfinite(torch.tensor(dataclasses.astuple(t.train_step()))).all()


# --- methods inside the model ------------------------------------------------------------------


@pytest.mark.parametrize("experiment,expected", [("baseline", True), ("moco", True), ("byol", False), ("mae", False)])
def test_generated_negatives_only_where_the_method_has_negatives(data, experiment, expected):
    assert engine(data, experiment).model.uses_generated_negatives is expected
    off = engine(data, experiment, {"crl.use_generated_negatives": False})
    assert off.model.uses_generated_negatives is False


def test_engine_calls_on_step_with_training_progress(data):
    t = engine(data, "byol", {"train.iterations": 2, "crl.byol.momentum_start": 0.99})
    t.train_step()
    assert t.model.crl.momentum == pytest.approx(cosine_momentum(0.99, 1.0, 0.5), abs=1e-12) == pytest.approx(0.995)
    t.train_step()
    assert t.model.crl.momentum == 1.0


# --- exact resume ------------------------------------------------------------------------------


METHOD_STATE = {
    "baseline": ["backbone.", "projector."],
    "byol": ["target_backbone.", "target_projector.", "predictor."],
    "moco": ["queue", "queue_position", "target_backbone.", "target_projector."],
    "mae": ["decoder.", "decoder_embed.", "mask_token", "head.", "latent_norm.running_mean", "latent_norm.running_var"],
    "no_generated_negatives": ["backbone.", "projector."],
    "no_norm_split": ["backbone.", "projector."],
    "plain_ebm": [],
}


def round_trip(state: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, map_location="cpu", weights_only=True)


def modules(t: Engine) -> dict[str, torch.nn.Module]:
    m = t.model
    named = {"ebm": m.ebm, "ema_ebm": m.ema_ebm}
    if m.crl is not None:
        named |= {"crl": m.crl, "ema_crl": m.ema_crl}
    return named


def assert_engines_equal(a: Engine, b: Engine) -> None:
    assert a.step == b.step
    for name, module in modules(a).items():
        other = modules(b)[name]
        pa, pb = dict(module.named_parameters()), dict(other.named_parameters())
        assert pa.keys() == pb.keys()
        for key in pa:
            assert torch.equal(pa[key], pb[key]), f"{name}.{key}"
        ba, bb = dict(module.named_buffers()), dict(other.named_buffers())
        assert ba.keys() == bb.keys()
        for key in ba:
            assert torch.equal(ba[key], bb[key]), f"{name}.{key}"
    assert_states_equal(a.optimizers["ebm"].state_dict(), b.optimizers["ebm"].state_dict(), "ebm_optimizer")
    assert a.schedules["ebm"].state_dict() == b.schedules["ebm"].state_dict()
    if a.model.crl is not None:
        assert_states_equal(a.optimizers["crl"].state_dict(), b.optimizers["crl"].state_dict(), "crl_optimizer")
        assert a.schedules["crl"].state_dict() == b.schedules["crl"].state_dict()
    assert torch.equal(a.model.buffer, b.model.buffer)
    assert_states_equal(a.state_dict(), b.state_dict())  # everything a checkpoint holds, the RNG states included


@pytest.mark.parametrize("experiment", ALL_EXPERIMENTS)
def test_checkpoint_resume_is_bit_identical(data, experiment):
    # a short EMA half-life: the EMA copies average from step 2 on (before that they copy), so they carry state
    cfg = tiny_cfg(experiment, overrides=SIZES | {"train.ema_half_life_samples": 16.0})
    straight = training_engine(cfg, data, CPU)
    assert straight.ema_start == 2 and 0 < straight.ema_decay < 1
    initial = {k: v.clone() for k, v in straight.state_dict().get("crl", {}).items()}
    expected: list[StepMetrics] = [straight.train_step() for _ in range(5)]

    first = training_engine(cfg, data, CPU)
    metrics = [first.train_step() for _ in range(3)]
    state = round_trip(first.state_dict())
    crl_state = state.get("crl", {})
    for prefix in METHOD_STATE[experiment]:  # the method's own state is in the checkpoint
        assert any(key.startswith(prefix) for key in crl_state), prefix
    if experiment == "moco":  # and it changed in training, so a resume that dropped it would show
        assert not torch.equal(crl_state["queue"], initial["queue"])
        assert int(crl_state["queue_position"]) == (3 * 2 * 8) % 32
    if experiment == "byol":
        key = next(k for k in crl_state if k.startswith("target_projector.") and k.endswith("weight"))
        assert not torch.equal(crl_state[key], initial[key])

    resumed = training_engine(cfg, data, CPU)
    resumed.load_state_dict(state)
    assert resumed.step == 3
    metrics += [resumed.train_step() for _ in range(2)]

    assert metrics == expected  # StepMetrics, every float bit-identical
    for name, module in modules(straight).items():  # the EMA copies lag their networks, so they are checked too
        if name.startswith("ema_"):
            online = modules(straight)[name[4:]]
            params = zip(module.parameters(), online.parameters(), strict=True)
            assert any(not torch.equal(ema, p) for ema, p in params if p.requires_grad), name
    assert_engines_equal(resumed, straight)


# --- train.precision = "bf16" ------------------------------------------------------------------


@pytest.mark.parametrize("experiment", ["baseline", "byol", "moco", "mae", "no_norm_split", "plain_ebm"])
def test_train_step_under_bf16_precision(data, experiment):
    t = engine(data, experiment, {"train.precision": "bf16"})
    for _ in range(2):
        metrics = t.train_step()
    assert torch.isfinite(torch.tensor(dataclasses.astuple(metrics))).all()
    assert all(p.dtype == torch.float32 for p in t.model.ebm.parameters())


@pytest.mark.parametrize("beta", [0.01, 5.0])
def test_the_sgld_gradient_of_the_coupled_energy_is_its_finite_difference(data, beta):
    """dE(x)/dx that SGLD follows, for no_norm_split's marginal E(x) = 1/2 ||f||^2 - log Phi_d(beta ||u||), by
    autograd through the EBM (float64, eval mode: fixed spectral-norm estimate) against central differences of
    the same function; beta = 5 makes the vMF term carry a visible share of the gradient."""
    m = engine(data, "no_norm_split", {"energy.beta": beta, "runtime.optimized": False}).model
    ebm = m.ebm.double().eval()
    energy_fn = m.marginal_energy_fn(ebm)
    x = torch.rand(2, 3, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    x.requires_grad_(True)
    (grad,) = torch.autograd.grad(energy_fn(x).sum(), x)
    f, u = ebm(x.detach())
    vmf_share = (beta * u.norm(dim=1)).max().item()
    assert energy_fn(x).dtype == torch.float64 and vmf_share > 0
    for index in [(0, 0, 3, 4), (0, 2, 10, 12), (1, 1, 7, 0), (1, 0, 15, 15)]:
        step = torch.zeros_like(x)
        step[index] = 1e-6
        central = (energy_fn(x.detach() + step).sum() - energy_fn(x.detach() - step).sum()).item() / 2e-6
        assert grad[index].item() == pytest.approx(central, rel=1e-5, abs=1e-10), index


# --- the replay buffer and a diverging step ----------------------------------------------------


def test_replay_buffer_initialised_uniform():
    """The model's replay buffer (CLEL.buffer) starts as uniform noise of the images' shape."""
    torch.manual_seed(0)
    cfg = tiny_cfg(sgld__buffer_size=500)
    buffer = CLEL(cfg, (0.5,) * 3, (0.25,) * 3, (3, 4, 4), torch.device("cpu")).buffer
    assert buffer.shape == (500, 3, 4, 4)
    assert buffer.min().item() >= 0 and buffer.max().item() < 1
    assert buffer.mean().item() == pytest.approx(0.5, abs=0.01)
    assert buffer.var().item() == pytest.approx(1 / 12, abs=0.005)


def test_non_finite_energy_stops_with_the_step_and_term_and_no_update():
    cfg = tiny_cfg(sgld__steps=2, train__batch_size=8)
    engine = training_engine(cfg, load_digits(16), torch.device("cpu"))
    engine.train_step()
    with torch.no_grad():
        engine.model.ebm.head[0].weight[0, 0] = float("inf")
    before = {k: v.clone() for k, v in engine.model.ebm.state_dict().items()}
    with pytest.raises(Diverged, match=r"^step 2: loss_ebm is nan"):
        engine.train_step()
    after = engine.model.ebm.state_dict()
    assert all(torch.equal(before[k], after[k]) or k.endswith(("_u", "_v")) for k in before)
    assert engine.step == 1
