"""A store of made-up results for the report tests: result.json bodies as runner.run.execute writes them, a populated
store (finished, corrupt, foreign and running runs, a sweep record), summarize run on it, and the checks of the
CSVs and TensorBoard sessions it makes of them (by hand and against scipy)."""

import csv
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from google.protobuf.json_format import MessageToDict
from matplotlib.image import imsave
from scipy import stats
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata as hp_metadata

from runner.plan.sweep_record import record_sweep
from runner.report.stats import FID, MetricKey
from runner.report.summary import summarize
from runner.report.table import run_columns, summary_columns
from runner.store import RunStore, Store

SETS = ("interpolation", "uniform_noise")
METRICS = [FID, *(MetricKey(name, score) for name in SETS for score in ("marginal", "joint"))]
CONFIG = """
[profiles.tiny]
[experiments.baseline]
[experiments.byol]
[experiments.moco]
[experiments.mae]
[experiments.no_norm_split]
[experiments.plain_ebm]
[sweep]
seeds = [0, 1, 2]
"""

# experiment, seed, fid, interpolation (marginal, joint), uniform_noise (marginal, joint)
RUNS = [
    ("baseline", 0, 10.0, (0.80, 0.70), (0.99, 0.98)),
    ("baseline", 1, 12.0, (0.85, 0.74), (0.97, 0.96)),
    ("baseline", 2, 14.0, (0.90, 0.75), (0.98, 0.97)),
    ("no_norm_split", 0, 20.0, (0.60, 0.50), (0.90, 0.80)),
    ("no_norm_split", 1, None, (0.66, 0.55), (0.92, 0.82)),  # FID weights unavailable
    ("no_norm_split", 2, 23.0, (0.69, 0.65), (0.91, 0.84)),
    ("plain_ebm", 0, 30.0, (0.55, None), (0.85, None)),  # no encoder: no joint score
]


def result(experiment: str, seed: int, fid, interpolation, uniform_noise, profile: str = "tiny") -> dict:
    """A result.json as runner.run.execute.run_result writes it."""
    crl = {"plain_ebm": "none", "byol": "byol"}.get(experiment, "simclr")
    return {
        "experiment": experiment,
        "profile": profile,
        "seed": seed,
        "run_id": f"{experiment}-{profile}-s{seed}",
        "config_hash": "0123abcd",
        "iterations": 600,
        "wall_s": 1800.0 + 360 * seed,
        "device": "cpu (2 threads)",
        "torch": "2.5.0",
        "crl": crl,
        "norm_direction_split": experiment != "no_norm_split",
        "use_generated_negatives": "n/a" if crl in ("none", "byol") else True,
        "fid": fid,
        "fid_features": "digits-cnn",
        "fid_init": 310.5,
        "fid_protocol": "1000 samples vs train",
        "auroc": {
            "interpolation": dict(zip(("marginal", "joint"), interpolation, strict=True)),
            "uniform_noise": dict(zip(("marginal", "joint"), uniform_noise, strict=True)),
        },
        "notes": ["fid missing: no weights"] if fid is None else [],
    }


def png(seed: int) -> bytes:
    buffer = io.BytesIO()
    imsave(buffer, np.random.default_rng(seed).random((18, 18, 3)), format="png")
    return buffer.getvalue()


def populate(store: Store) -> None:
    """The runs above, plus a corrupt, a foreign and a mistyped result.json and one run in progress."""
    for i, run in enumerate(RUNS):
        body = result(*run)
        store.write(f"{body['run_id']}/result.json", json.dumps(body).encode())
        store.write(f"{body['run_id']}/samples.png", png(i))
    store.write("moco-tiny-s0/result.json", b'{"experiment": "moco", "fid": 1')
    store.write("mae-tiny-s0/result.json", json.dumps({"accuracy": 0.93, "epochs": 10}).encode())
    store.write("byol-tiny-s1/result.json", json.dumps(result("byol", 1, "12.5", (0.7, 0.7), (0.9, 0.9))).encode())
    RunStore(store, "moco-tiny-s1").save_checkpoint(300, b"a checkpoint")
    record_sweep(store, ASKED)


# what the sweeps into the populated store asked for: six experiments x seeds 0-2 of the tiny profile
EXPERIMENTS = ("baseline", "byol", "moco", "mae", "no_norm_split", "plain_ebm")
ASKED = [f"{exp}-tiny-s{seed}" for exp in EXPERIMENTS for seed in range(3)]


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def run_summarize(store_uri: str, tmp_path: Path, config: str | None = None):
    lines: list[str] = []
    warnings: list[str] = []
    if config is None:
        (tmp_path / "experiments.toml").write_text(CONFIG)
        config = str(tmp_path / "experiments.toml")
    report = summarize(store_uri, str(tmp_path / "out" / "summary.csv"), config, lines.append, warnings.append)
    return report, "\n".join(lines), warnings


def welch_reference(a: list[float], b: list[float]) -> tuple[float, float]:
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    return float(ci.low), float(ci.high)


def hparams_of(logdir: Path) -> tuple[dict, EventAccumulator]:
    """The hparams plugin's summaries in one directory, read with TensorBoard's EventAccumulator."""
    accumulator = EventAccumulator(str(logdir))
    accumulator.Reload()
    return accumulator.PluginTagToContent(hp_metadata.PLUGIN_NAME), accumulator


def check_summary_csv(path: Path) -> None:
    columns, rows = read_csv(path)
    assert columns == summary_columns(METRICS)
    by_exp = {row["experiment"]: row for row in rows}
    assert [row["experiment"] for row in rows] == ["baseline", "no_norm_split", "plain_ebm"]
    base, split, plain = by_exp["baseline"], by_exp["no_norm_split"], by_exp["plain_ebm"]

    # baseline: fid 10, 12, 14 -> median and mean 12, sample std 2; no comparison with itself
    assert (base["n_seeds"], base["seeds"], base["fid_n"]) == ("3", "0 1 2", "3")
    assert float(base["fid_median"]) == 12.0 and float(base["fid_mean"]) == 12.0 and float(base["fid_std"]) == 2.0
    assert float(base["fid_iqm"]) == pytest.approx(stats.trim_mean([10.0, 12.0, 14.0], 0.25))
    assert base["fid_ratio"] == base["fid_p_rank"] == base["fid_verdict"] == ""
    assert float(base["auroc_interpolation_marginal_median"]) == pytest.approx(0.85)
    assert float(base["auroc_interpolation_marginal_std"]) == pytest.approx(0.05)

    # no_norm_split: fid of s1 missing -> n 2, median (20 + 23) / 2, never a zero
    assert (split["n_seeds"], split["fid_n"]) == ("3", "2")
    assert float(split["fid_median"]) == 21.5
    assert "fid missing for s1" in split["notes"]
    # the FID ratio: exp of the Hodges-Lehmann shift of log FID, the median of the six pairwise log ratios; here
    # the middle two are 20/12 and 23/12, so the ratio is their geometric mean
    assert float(split["fid_ratio"]) == pytest.approx(math.sqrt(20 / 12 * 23 / 12))
    assert float(split["fid_ratio_lo"]) <= float(split["fid_ratio"]) <= float(split["fid_ratio_hi"])
    # every no_norm_split seed is above every baseline seed: exact U = 6 of 6, two-sided p = 2 / C(5, 2)
    assert float(split["fid_p_rank"]) == pytest.approx(0.2)
    assert float(split["fid_p_better"]) == 0.0  # no seed of the arm has a lower FID than a seed of the baseline
    welch = stats.ttest_ind(np.log([20.0, 23.0]), np.log([10.0, 12.0, 14.0]), equal_var=False)
    assert float(split["fid_p_welch"]) == pytest.approx(welch.pvalue, rel=1e-6)
    low, high = welch.confidence_interval(0.95)
    assert float(split["fid_welch_ratio_lo"]) == pytest.approx(math.exp(low), rel=1e-6)
    assert float(split["fid_welch_ratio_hi"]) == pytest.approx(math.exp(high), rel=1e-6)
    marginal = ([0.60, 0.66, 0.69], [0.80, 0.85, 0.90])
    assert float(split["auroc_interpolation_marginal_median"]) == pytest.approx(0.66)
    pairs = [a - b for a in marginal[0] for b in marginal[1]]
    assert float(split["auroc_interpolation_marginal_shift"]) == pytest.approx(np.median(pairs))

    # the primary family of no_norm_split (its question; the made-up config names none): fid and the
    # interpolation marginal AUROC, Holm over the two exact p-values; the secondary endpoints apart
    primary = [float(split[f"{key}_p_rank"]) for key in ("fid", "auroc_interpolation_marginal")]
    expected = np.maximum.accumulate([min(1.0, (2 - i) * p) for i, p in enumerate(sorted(primary))])
    assert sorted(float(split[f"{key}_p_holm"]) for key in ("fid", "auroc_interpolation_marginal")) == pytest.approx(
        list(expected)
    )
    assert split["fid_family"] == "no_norm_split" and split["fid_primary"] == "true"
    assert split["auroc_uniform_noise_joint_primary"] == "false"
    assert split["fid_verdict"] == "no difference detected"  # three vs two seeds: no exact p below 0.1
    assert split["fid_mde_ratio"] == ""  # no outcome of the test reaches alpha 0.025 at 2 vs 3 seeds
    assert base["fid_p_rank"] == base["fid_verdict"] == "" and plain["fid_p_rank"] == ""

    # plain_ebm: one seed -> no std, no interval, no test; joint AUROC missing -> n 0, empty
    assert (plain["n_seeds"], plain["fid_std"], plain["fid_median"]) == ("1", "", "30")
    assert plain["fid_median_lo"] == plain["fid_median_hi"] == plain["fid_ratio"] == ""
    assert plain["auroc_interpolation_joint_n"] == "0" and plain["auroc_interpolation_joint_median"] == ""
    assert "auroc_interpolation_joint, auroc_uniform_noise_joint missing for all seeds" in plain["notes"]

    # failures: no samples.png is a grid here (made-up PNGs), so the backstop decides (none collapsed)
    assert (base["failed_n"], base["judged_n"], base["judged_on_samples_n"]) == ("0", "3", "0")
    assert float(base["failure_rate_hi"]) == pytest.approx(1 - 0.025 ** (1 / 3))  # Clopper-Pearson, 0 of 3

    # wall hours: (1800 + 2160 + 2520) s over 3 runs; iterations, device
    assert float(base["wall_h_total"]) == pytest.approx(1.8) and float(base["wall_h_mean"]) == pytest.approx(0.6)
    assert (base["iterations"], base["device"], base["fid_features"]) == ("600", "cpu (2 threads)", "digits-cnn")


def check_runs_csv(path: Path) -> None:
    columns, rows = read_csv(path)
    assert columns == run_columns(METRICS)
    assert [row["run_id"] for row in rows] == [f"{e}-tiny-s{s}" for e, s, *_ in RUNS]
    by_id = {row["run_id"]: row for row in rows}
    missing = by_id["no_norm_split-tiny-s1"]
    assert missing["fid"] == "" and missing["notes"].startswith("missing: fid")
    assert missing["norm_direction_split"] == "false" and missing["auroc_interpolation_joint"] == "0.55"
    plain = by_id["plain_ebm-tiny-s0"]
    assert plain["auroc_uniform_noise_joint"] == "" and plain["use_generated_negatives"] == "n/a"
    assert float(by_id["baseline-tiny-s2"]["wall_h"]) == pytest.approx(0.7)


def check_hparams(logdir: Path, run_ids: list[str]) -> None:
    content, _ = hparams_of(logdir)
    experiment = hp_metadata.parse_experiment_plugin_data(content[hp_metadata.EXPERIMENT_TAG])
    assert {info.name for info in experiment.hparam_infos} == {
        "experiment",
        "profile",
        "crl",
        "norm_direction_split",
        "seed",
        "use_generated_negatives",
    }
    domains = {info.name: list(info.domain_discrete) for info in experiment.hparam_infos}
    assert domains["experiment"] == ["baseline", "no_norm_split", "plain_ebm"]
    assert domains["seed"] == [0, 1, 2] and domains["use_generated_negatives"] == ["n/a", "true"]
    tags = [info.name.tag for info in experiment.metric_infos]
    metric_tags = ["fid", *(f"auroc/{name}/{score}" for name in SETS for score in ("marginal", "joint"))]
    assert tags[:5] == metric_tags  # then the verdict columns of the tested metrics (no_norm_split has them all)
    assert tags[5:] == [
        f"{tag}/{part}" for tag in metric_tags for part in ("p", "p_holm", "verdict", "mde", "seeds_needed")
    ]
    sessions = sorted(p.name for p in logdir.iterdir() if p.is_dir())
    assert sessions == sorted(run_ids)
    for name in sessions:
        assert len(list((logdir / name).iterdir())) == 1, "one event file per session"

    content, scalars = hparams_of(logdir / "no_norm_split-tiny-s1")
    start = hp_metadata.parse_session_start_info_plugin_data(content[hp_metadata.SESSION_START_INFO_TAG])
    values = {name: MessageToDict(value) for name, value in start.hparams.items()}
    assert values == {
        "experiment": "no_norm_split",
        "profile": "tiny",
        "crl": "simclr",
        "norm_direction_split": False,
        "seed": 1.0,
        "use_generated_negatives": "true",
    }
    assert "fid" not in scalars.Tags()["scalars"], "a missing FID is no scalar, never a zero"
    (point,) = scalars.Scalars("auroc/interpolation/marginal")
    assert (point.step, point.value) == (600, pytest.approx(0.66, abs=1e-6))

    _, scalars = hparams_of(logdir / "baseline-tiny-s2")
    assert scalars.Scalars("fid")[0].value == 14.0
    _, scalars = hparams_of(logdir / "plain_ebm-tiny-s0")
    assert "auroc/interpolation/joint" not in scalars.Tags()["scalars"]


# the files summarize writes (beside the store when no --out is given)
OUTPUT_NAMES = [
    "fid_by_seed.png",
    "report.md",
    "samples_grid.png",
    "samples_rows.png",
    "summary.csv",
    "summary.png",
    "summary_runs.csv",
]
