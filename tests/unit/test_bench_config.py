"""The bench presets (runner.run.bench.bench_config): ref32 is the configuration of the issue that introduced it."""

import pytest

from runner.errors import UserError
from runner.run.bench import REF32, bench_config


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
