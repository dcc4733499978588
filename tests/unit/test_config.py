"""experiments.toml resolution: order, validation errors (one line), hashing, the ablation matrix. The same errors from
`python -m runner` (one line, exit 2): tests/e2e/test_config_cli.py."""

import tomllib
from pathlib import Path

import pytest

from runner.config import ExperimentsFile, parse_overrides
from runner.errors import UserError
from runner.layout import is_smoke, parse_run_id, point_tag
from tests.support import ROOT

CONFIG = ROOT / "experiments.toml"
EXPERIMENTS = ["baseline", "byol", "moco", "mae", "no_generated_negatives", "no_norm_split", "plain_ebm"]


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in d.items():
        if isinstance(value, dict):
            out |= _flat(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def _write_config(tmp_path: Path, edit) -> Path:
    text = edit(CONFIG.read_text())
    path = tmp_path / "experiments.toml"
    path.write_text(text)
    return path


def test_matrix_has_all_experiments_and_profiles(experiments):
    assert list(experiments.experiments) == EXPERIMENTS
    assert set(experiments.profiles) == {"tiny", "paper"}
    for exp in EXPERIMENTS:
        for profile in ("tiny", "paper"):
            cfg = experiments.resolve(exp, profile, 0)
            assert cfg.run_id == f"{exp}-{profile}-s0"


def test_paper_profile_has_clel_published_settings(experiments):
    cfg = experiments.resolve("baseline", "paper", 0)
    assert (cfg.data.dataset, cfg.data.image_size) == ("cifar10", 32)
    assert (cfg.train.batch_size, cfg.train.iterations) == (64, 100_000)
    assert (cfg.sgld.steps, cfg.sgld.step_size, cfg.sgld.noise) == (60, 100.0, 0.001)
    assert (cfg.sgld.buffer_size, cfg.sgld.reinit_prob) == (10_000, 0.001)
    assert (cfg.energy.beta, cfg.energy.alpha, cfg.energy.norm_direction_split) == (0.01, 1.0, True)
    assert cfg.train.ema_half_life_samples == 20_000
    ebm_opt = cfg.train.ebm_optimizer
    assert (ebm_opt.name, ebm_opt.lr, ebm_opt.betas, ebm_opt.warmup_iterations) == ("adam", 1e-4, [0.0, 0.999], 2000)
    enc_opt = cfg.crl.simclr.optimizer
    assert (enc_opt.name, enc_opt.lr, enc_opt.momentum, enc_opt.weight_decay, enc_opt.schedule) == (
        "sgd",
        0.03,
        0.9,
        5e-4,
        "cosine",
    )
    assert cfg.crl.simclr.temperature == 0.2
    assert cfg.ebm.channels == [128, 128, 256, 256] and cfg.ebm.blocks_per_stage == 2


def test_resolution_order_defaults_profile_experiment_cli(experiments):
    raw = tomllib.loads(CONFIG.read_text())
    default_steps = raw["defaults"]["sgld"]["steps"]
    tiny_steps = raw["profiles"]["tiny"]["sgld"]["steps"]
    assert experiments.resolve("baseline", "paper", 0).sgld.steps == default_steps
    assert experiments.resolve("baseline", "tiny", 0).sgld.steps == tiny_steps
    # experiment beats profile, CLI beats experiment
    assert experiments.resolve("plain_ebm", "tiny", 0).energy.beta == 0.0
    cfg = experiments.resolve("no_norm_split", "tiny", 0, {"energy.norm_direction_split": True, "sgld.steps": 3})
    assert (cfg.energy.norm_direction_split, cfg.sgld.steps) == (True, 3)


@pytest.mark.parametrize("ablation", [e for e in EXPERIMENTS if e != "baseline"])
@pytest.mark.parametrize("profile", ["tiny", "paper"])
def test_ablation_differs_from_baseline_only_in_the_keys_it_names(experiments, ablation, profile):
    named = _flat({k: v for k, v in experiments.experiments[ablation].items() if k not in ("description", "question")})
    exclude = {"runtime", "smoke", "point"}
    base = _flat(experiments.resolve("baseline", profile, 0).model_dump(mode="json", exclude=exclude))
    other = _flat(experiments.resolve(ablation, profile, 0).model_dump(mode="json", exclude=exclude))
    differing = {key for key in base if base[key] != other[key]}
    assert differing == set(named) | {"experiment"}
    for key, value in named.items():
        assert other[key] == value


def test_config_hash_tracks_the_math_not_the_runtime(experiments):
    base = experiments.resolve("baseline", "tiny", 0)
    assert base.config_hash == experiments.resolve("baseline", "tiny", 0).config_hash
    assert len(base.config_hash) == 12
    runtime_only = experiments.resolve("baseline", "tiny", 0, {"runtime.device": "cuda", "runtime.checkpoint_every": 7})
    assert runtime_only.config_hash == base.config_hash
    assert experiments.resolve("baseline", "tiny", 1).config_hash != base.config_hash
    assert experiments.resolve("baseline", "tiny", 0, {"sgld.noise": 0.002}).config_hash != base.config_hash


def test_the_hash_holds_only_the_method_the_run_uses(experiments):
    """Tuning one method's table never changes another arm's run (its id, its hash, its finished result)."""
    base = experiments.resolve("baseline", "tiny", 0)
    other_method = experiments.resolve("baseline", "tiny", 0, {"crl.byol.latent_dim": 32, "crl.mae.depth": 2})
    assert other_method.config_hash == base.config_hash and other_method.run_id == base.run_id
    assert set(base.hashed_dict()["crl"]) & {"simclr", "moco", "byol", "mae"} == {"simclr"}
    own = experiments.resolve("byol", "tiny", 0, {"crl.byol.latent_dim": 32})
    assert (
        own.point == {"crl.byol.latent_dim": 32}
        and own.config_hash != experiments.resolve("byol", "tiny", 0).config_hash
    )
    plain = experiments.resolve("plain_ebm", "tiny", 0)  # its EBM takes SimCLR's latent size
    assert set(plain.hashed_dict()["crl"]) & {"simclr", "moco", "byol", "mae"} == {"simclr"}
    changed = experiments.resolve("plain_ebm", "tiny", 0, {"crl.simclr.latent_dim": 32})
    assert changed.config_hash != plain.config_hash


def test_the_point_is_what_overrides_change_and_names_the_run(experiments):
    """cfg.point: the hashed keys whose validated values differ from the experiment's own config; in the run id."""
    base = experiments.resolve("baseline", "tiny", 0)
    assert base.point == {} and base.run_id == "baseline-tiny-s0"
    cfg = experiments.resolve("baseline", "tiny", 0, {"sgld.noise": 0.002, "energy.beta": 0.01, "runtime.threads": 2})
    assert cfg.point == {"sgld.noise": 0.002}  # beta is baseline's own value; runtime is not part of a run
    assert cfg.run_id == f"baseline-tiny-{point_tag(cfg.point)}-s0" and cfg.variant == point_tag(cfg.point)
    assert "point" not in cfg.hashed_dict() and cfg.config_hash != base.config_hash
    same = experiments.resolve("baseline", "tiny", 0, {"train.ebm_optimizer": {"lr": 5e-4}, "sgld.noise": 2e-3})
    assert same.point == cfg.point and same.run_id == cfg.run_id  # 5e-4 is tiny's lr: a table of equal values
    table = experiments.resolve("baseline", "tiny", 0, {"train.ebm_optimizer": {"lr": 1e-3}})
    assert table.point == {"train.ebm_optimizer.lr": 0.001}  # a dotted key per changed leaf
    order = [{"sgld.steps": 5, "sgld.noise": 0.002}, {"sgld.noise": 0.002, "sgld.steps": 5}]
    assert len({experiments.resolve("baseline", "tiny", 0, o).run_id for o in order}) == 1
    assert experiments.resolve("moco", "tiny", 0, {"crl.method": "moco"}).run_id == "moco-tiny-s0"
    listed = experiments.resolve("baseline", "tiny", 0, {"ebm.channels": [16, 32, 64]})
    assert listed.point == {} and experiments.resolve("baseline", "tiny", 0, {"ebm.channels": [8]}).point == {
        "ebm.channels": [8]
    }


def test_a_smoke_runs_point_is_relative_to_smoke(experiments):
    smoke = experiments.resolve("baseline", "tiny", 0, {"train.iterations": 10}, smoke=True)
    assert smoke.point == {} and smoke.run_id == "baseline-tiny-smoke-s0"  # [smoke] sets 10 iterations itself
    longer = experiments.resolve("baseline", "tiny", 0, {"train.iterations": 600}, smoke=True)
    assert longer.point == {"train.iterations": 600}  # tiny's own value, but not the smoke run's
    assert longer.run_id == f"baseline-tiny-smoke-{point_tag(longer.point)}-s0"
    assert experiments.resolve("baseline", "tiny", 0, {"train.iterations": 600}).run_id == "baseline-tiny-s0"
    assert parse_run_id(longer.run_id) == ("baseline", "tiny", f"smoke-{point_tag(longer.point)}", 0)
    assert is_smoke(parse_run_id(longer.run_id)[2]) and not is_smoke(point_tag(longer.point))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"sgld.stepz": 3}, "--set: sgld.stepz: unknown key (did you mean sgld.steps?)"),
        ({"sgld.steps": "sixty"}, "--set: sgld.steps: input should be a valid integer, got 'sixty'"),
        ({"train.batch_size": 1.5}, "--set: train.batch_size: input should be a valid integer, got 1.5"),
        ({"crl.method": "dino"}, "--set: crl.method: input should be 'simclr', 'moco', 'byol', 'mae' or 'none'"),
    ],
)
def test_bad_overrides_name_the_key(experiments, overrides, message):
    with pytest.raises(UserError) as err:
        experiments.resolve("baseline", "tiny", 0, overrides)
    assert str(err.value).startswith(message)


def test_unknown_experiment_and_profile(experiments):
    with pytest.raises(UserError, match="unknown experiment 'bsaeline'"):
        experiments.resolve("bsaeline", "tiny", 0)
    with pytest.raises(UserError, match="unknown profile 'huge'"):
        experiments.resolve("baseline", "huge", 0)


def test_typo_in_file_names_file_table_and_key(tmp_path):
    path = _write_config(tmp_path, lambda t: t.replace('crl.method = "byol"', 'crl.metod = "byol"'))
    with pytest.raises(UserError) as err:
        ExperimentsFile(path).resolve("byol", "tiny", 0)
    assert str(err.value) == f"{path} [experiments.byol]: crl.metod: unknown key (did you mean crl.method?)"


def test_wrong_type_in_file_names_its_table(tmp_path):
    path = _write_config(tmp_path, lambda t: t.replace("sgld.steps = 20", 'sgld.steps = "20"'))
    with pytest.raises(UserError) as err:
        ExperimentsFile(path).resolve("baseline", "tiny", 0)
    assert str(err.value).startswith(f"{path} [profiles.tiny]: sgld.steps: input should be a valid integer")


def test_parse_overrides_reads_toml_values():
    assert parse_overrides("sgld.steps=20 ebm.channels=[8,16] data.dataset=cifar10 energy.beta=0.5") == {
        "sgld.steps": 20,
        "ebm.channels": [8, 16],
        "data.dataset": "cifar10",
        "energy.beta": 0.5,
    }
    assert parse_overrides(["a.b=true", 'c.d="x y"']) == {"a.b": True, "c.d": "x y"}
    with pytest.raises(UserError, match="expected KEY=VALUE"):
        parse_overrides("sgld.steps")
