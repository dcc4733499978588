"""The optimized training path computes the same math as the plain one; `bench` reports what it measured."""

import copy
import json

import pytest
import torch
from runs import run_cli

from runner.bench import REF32, bench_config
from runner.clel.engine import Engine
from runner.clel.model import training_engine
from runner.config import ExperimentsFile
from runner.data import load_digits
from runner.errors import UserError

SMALL = {"sgld.steps": 4, "train.batch_size": 8, "sgld.buffer_size": 32}


def _engines(experiment: str) -> tuple[Engine, Engine]:
    data = load_digits(16)
    pair = []
    for optimized in (False, True):
        cfg = ExperimentsFile().resolve(experiment, "tiny", 0, {**SMALL, "runtime.optimized": optimized})
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


def test_ref32_is_the_issue_configuration():
    cfg = bench_config("ref32", plain=False, device="cpu", bf16=False, overrides={})
    assert (cfg.data.image_size, cfg.train.batch_size) == (32, 32)
    assert cfg.ebm.channels == REF32["ebm.channels"] == [64, 64, 128, 128] and cfg.ebm.blocks_per_stage == 1
    assert (cfg.ebm.head_width, cfg.ebm.feature_dim, cfg.ebm.projector_width, cfg.crl.latent_dim) == (
        2048,
        128,
        2048,
        128,
    )
    assert (cfg.crl.method, cfg.crl.backbone_width, cfg.crl.simclr.projector_hidden) == ("simclr", 64, 2048)
    assert (cfg.sgld.steps, cfg.sgld.augment, cfg.crl.use_generated_negatives) == (60, True, True)
    assert bench_config("ref32", plain=True, device="cpu", bf16=True, overrides={}).runtime.optimized is False
    with pytest.raises(UserError, match="unknown"):
        bench_config("ref64", plain=False, device="cpu", bf16=False, overrides={})


@pytest.mark.slow
def test_bench_prints_one_json_line_and_its_old_preset_flag_is_deprecated():
    result = run_cli("bench", "--config", "tiny", "--iterations", "2", "--warmup", "1", "--set", "sgld.steps=2")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == ["warning: bench --config is deprecated and will be removed: use --preset"]
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    assert report["config"] == "tiny" and report["path"] == "optimized" and report["iterations"] == 2
    assert report["sgld_steps"] == 2 and report["threads"] >= 1 and report["device"] == "cpu"
    times = report["sec_per_iter"]
    assert 0 < times["min"] <= times["median"] <= times["max"]
    assert 0 < report["sgld_share"] < 1 and report["peak_rss_mb"] > 0


def test_bench_batches_larger_than_its_synthetic_set_run():
    """A batch larger than the 512 synthetic images once divided by zero; the set grows to a batch."""
    from runner.bench import bench

    overrides = {"train.batch_size": 520, "sgld.steps": 1, "sgld.buffer_size": 520, "ebm.channels": [4, 4, 4]}
    line = json.loads(bench("tiny", iterations=1, warmup=0, overrides=overrides | {"crl.backbone_width": 2}))
    assert line["batch_size"] == 520
