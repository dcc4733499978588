"""The optimized training path computes the same math as the plain one, and `bench` runs a batch larger than its
synthetic set. The ref32 preset: tests/unit/test_bench_config.py; the bench command: tests/e2e/test_bench_cli.py."""

import copy
import json

import pytest
import torch

from runner.clel.engine import Engine
from runner.clel.model import training_engine
from runner.data import load_digits
from tests.support import tiny_cfg

SIZES = {"sgld.steps": 4, "train.batch_size": 8, "sgld.buffer_size": 32}


def _engines(experiment: str) -> tuple[Engine, Engine]:
    data = load_digits(16)
    pair = []
    for optimized in (False, True):
        cfg = tiny_cfg(experiment, overrides=SIZES, runtime__optimized=optimized)
        pair.append(training_engine(cfg, data, torch.device("cpu")))
    assert pair[0].model.cfg.config_hash == pair[1].model.cfg.config_hash  # runtime.optimized is not part of the math
    return pair[0], pair[1]


@pytest.mark.parametrize("experiment", ["baseline", "no_norm_split", "moco"])
def test_optimized_and_plain_paths_agree(experiment):
    plain, fast = _engines(experiment)
    assert not plain.model.optimized and fast.model.optimized
    assert fast.model.ebm.backbone[1].parametrizations.weight.original.is_contiguous(memory_format=torch.channels_last)
    encoder_at_init = copy.deepcopy(plain.model.crl.state_dict())
    for _ in range(3):
        torch.manual_seed(plain.step + 7)
        plain_metrics = plain.train_step()
        torch.manual_seed(fast.step + 7)
        fast_metrics = fast.train_step()
        for name, value in vars(plain_metrics).items():
            # z(x) carries the encoder's channels-last BatchNorm rounding and an occasional flipped ReLU (measured
            # in docs/FIDELITY.md, "Precision"): its mean cosine with u, a number in [-1, 1], gets an absolute bound
            tolerance = {"abs": 1e-4} if name == "latent_alignment" else {"rel": 1e-4, "abs": 1e-6}
            assert getattr(fast_metrics, name) == pytest.approx(value, **tolerance), name
        torch.testing.assert_close(fast.model.buffer, plain.model.buffer, rtol=1e-4, atol=1e-5)
    for (name, p), q in zip(plain.model.ebm.state_dict().items(), fast.model.ebm.state_dict().values(), strict=True):
        torch.testing.assert_close(q, p, rtol=1e-4, atol=1e-6, msg=name)
    # The encoder's ReLUs turn rounding differences of the two memory layouts into a few flipped activations, and
    # SGD with momentum carries them on: how far apart the two paths end depends on the thread count (oneDNN picks
    # other kernels). The same math keeps them a small fraction of what three steps moved each tensor (seen: at
    # most 3% with one thread, 0.06% with two); a difference in the math would be of the size of the update.
    for (name, p), q in zip(plain.model.crl.state_dict().items(), fast.model.crl.state_dict().values(), strict=True):
        if not p.is_floating_point():
            assert torch.equal(q, p), name
            continue
        moved = (p - encoder_at_init[name]).norm()
        assert (q - p).norm() <= 0.1 * moved + 1e-6, (name, float((q - p).norm()), float(moved))


def test_optimized_sampling_restores_the_ebm():
    fast = _engines("baseline")[1].model
    requires = [p.requires_grad for p in fast.ebm.parameters()]
    fast.draw_samples(4)
    assert fast.ebm.training
    assert [p.requires_grad for p in fast.ebm.parameters()] == requires


def test_bench_batches_larger_than_its_synthetic_set_run():
    """A batch larger than the 512 synthetic images once divided by zero; the set grows to a batch."""
    from runner.run.bench import bench

    overrides = {"train.batch_size": 520, "sgld.steps": 1, "sgld.buffer_size": 520, "ebm.channels": [4, 4, 4]}
    line = json.loads(bench("tiny", iterations=1, warmup=0, overrides=overrides | {"crl.backbone_width": 2}))
    assert line["batch_size"] == 520
