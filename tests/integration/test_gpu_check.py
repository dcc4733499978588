"""The GPU check (runner.run.gpu_check): its CPU dry run end to end, and the FLOP count its TFLOP/s figure uses."""

import json

import pytest
import torch
from torch import nn

from runner.clel.engine import Engine
from runner.clel.model import training_engine
from runner.run.bench import bench_config, synthetic_data
from runner.run.gpu_check import TINY, gpu_check_json, sgld_step_flops


def hand_counted_sgld_step_flops(engine: Engine) -> int:
    """2 FLOPs per multiply-add of every conv and linear layer of f(x), once forward, once for the input gradient."""
    batch, ebm = engine.model.cfg.train.batch_size, engine.model.ebm
    flops = 0

    def conv(module: nn.Conv2d, _, output: torch.Tensor) -> None:
        nonlocal flops
        k = module.kernel_size[0] * module.kernel_size[1]
        flops += 2 * output.shape[0] * output.shape[2] * output.shape[3] * module.out_channels * module.in_channels * k

    def linear(module: nn.Linear, _, output: torch.Tensor) -> None:
        nonlocal flops
        flops += 2 * output.shape[0] * module.in_features * module.out_features

    modules = list(ebm.backbone.modules()) + list(ebm.head.modules())
    hooks = [m.register_forward_hook(conv) for m in modules if isinstance(m, nn.Conv2d)]
    hooks += [m.register_forward_hook(linear) for m in modules if isinstance(m, nn.Linear)]
    with torch.no_grad():
        ebm.features(torch.rand(batch, 3, 32, 32))
    for hook in hooks:
        hook.remove()
    return 2 * flops  # the input gradient of a conv or linear layer costs what its forward costs


@pytest.mark.parametrize("plain", [False, True])
def test_the_sgld_flop_count_is_the_hand_formula(plain):
    cfg = bench_config("paper", plain, "cpu", False, TINY)
    engine = training_engine(cfg, synthetic_data(32), torch.device("cpu"))
    assert sgld_step_flops(engine) == hand_counted_sgld_step_flops(engine)


def test_ref32_sgld_costs_about_891_gflop_per_iteration():
    cfg = bench_config("ref32", False, "cpu", False, {})
    engine = training_engine(cfg, synthetic_data(32), torch.device("cpu"))
    per_step = sgld_step_flops(engine)
    assert per_step == hand_counted_sgld_step_flops(engine)
    assert per_step * cfg.sgld.steps / 1e9 == pytest.approx(891.4, abs=0.1)


@pytest.mark.slow
def test_the_cpu_dry_run_prints_one_json_summary():
    summary = json.loads(gpu_check_json("cpu"))
    assert summary["device"] == "cpu" and summary["dry_run"] is True
    rows = {(r["config"], r["path"], r["precision"]) for r in summary["bench"]}
    assert rows == {
        (c, p, q)
        for c in ("paper", "ref32")
        for p, q in (("optimized", "fp32"), ("plain", "fp32"), ("optimized", "bf16"))
    }
    for row in summary["bench"]:
        assert row["sec_per_iter"] > 0 and row["sgld_gflop_per_iter"] > 0 and row["sgld_tflops"] > 0
    assert set(summary["plain_over_optimized"]) == {"paper", "ref32"}
    train = summary["train"]
    assert (
        train["iterations"] == 4
        and train["fid"] > 0
        and set(train["auroc_marginal"])
        == {
            "uniform_noise",
            "inverted",
            "interpolation",
        }
    )
    assert summary["resume"]["bit_identical"] is True  # on the CPU, resuming continues bit for bit
