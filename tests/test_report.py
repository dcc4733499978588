"""summarize (runner.report): CSV statistics checked by hand and against scipy, plots, HParams read back with
TensorBoard's own event reader, partial sweeps, corrupt results, local and S3 (loopback moto) stores."""

import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from google.protobuf.json_format import MessageToDict
from matplotlib.image import imread, imsave
from scipy import stats
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata as hp_metadata

from runner.errors import UserError
from runner.layout import TENSORBOARD_DIR
from runner.report.scan import read_result
from runner.report.stats import FID, MetricKey, profile_label, welch_interval
from runner.report.summary import summarize
from runner.report.sweep import asked_runs, missing_grid, record_sweep, seed_ranges
from runner.report.table import run_columns, summary_columns
from runner.store import RunStore, Store, open_store
from tests.runs import local_args, run_cli, run_id_of

REPO = Path(__file__).resolve().parents[1]
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
    """A result.json as runner.run.run_result writes it."""
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


# --- statistics ---------------------------------------------------------------------------------------------
def test_welch_interval_matches_scipy_and_hand_computation():
    a, b = [20.0, 23.0], [10.0, 12.0, 14.0]
    # By hand: var/n = 4.5/2 and 4/3; se = sqrt(3.58333) = 1.892969; df = 3.58333^2 / (2.25^2/1 + 1.33333^2/2)
    # = 2.157526; t_0.975(2.157526) * se = 7.600642 around 23/2 - 12 = 9.5.
    lo, hi = welch_interval(a, b)
    assert (lo, hi) == pytest.approx((1.8993584, 17.1006416), abs=1e-6)
    assert (lo, hi) == pytest.approx(welch_reference(a, b), rel=1e-12)
    rng = np.random.default_rng(0)
    x, y = list(rng.normal(0.8, 0.05, 5)), list(rng.normal(0.7, 0.2, 3))
    assert welch_interval(x, y) == pytest.approx(welch_reference(x, y), rel=1e-12)
    assert welch_interval([1.0], [1.0, 2.0]) is None
    assert welch_interval([2.0, 2.0], [1.0, 1.0]) == (1.0, 1.0)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (json.dumps({"accuracy": 0.9}).encode(), "missing keys"),
        (json.dumps({"accuracy": 0.9}).encode(), "unexpected keys accuracy"),
        (json.dumps(result("baseline", 0, "10", (0.8, 0.7), (0.9, 0.9))).encode(), "fid: expected a valid number"),
        (json.dumps(result("baseline", 0, True, (0.8, 0.7), (0.9, 0.9))).encode(), "fid: expected a valid number"),
        (json.dumps(result("baseline", 0, 10.0, ("x", 0.7), (0.9, 0.9))).encode(), "auroc.interpolation.marginal"),
        (json.dumps(result("baseline", 1, 10.0, (0.8, 0.7), (0.9, 0.9))).encode(), "does not match"),
        (json.dumps(result("baseline", 0, 10.0, (0.8, 0.7), (0.9, 0.9)) | {"seed": 0.0}).encode(), "seed"),
    ],
)
def test_read_result_rejects_corrupt_foreign_and_mistyped_files(body, message):
    with pytest.raises(ValueError, match=message):
        read_result(body, "baseline-tiny-s0")


def test_read_result_counts_a_non_finite_metric_as_missing():
    body = result("baseline", 0, float("nan"), (0.8, float("-inf")), (0.9, 0.9)) | {"fid_init": float("inf")}
    parsed = read_result(json.dumps(body).encode(), "baseline-tiny-s0")
    assert parsed.fid is None and parsed.fid_init is None and parsed.auroc["interpolation"].joint is None
    assert parsed.auroc["interpolation"].marginal == 0.8
    assert parsed.notes == [
        "fid is nan: counted as missing",
        "auroc.interpolation.joint is -inf: counted as missing",
        "fid_init is inf: counted as missing",
    ]


# --- a local store -----------------------------------------------------------------------------------------
def check_summary_csv(path: Path) -> None:
    columns, rows = read_csv(path)
    assert columns == summary_columns(METRICS)
    by_exp = {row["experiment"]: row for row in rows}
    assert [row["experiment"] for row in rows] == ["baseline", "no_norm_split", "plain_ebm"]
    base, split, plain = by_exp["baseline"], by_exp["no_norm_split"], by_exp["plain_ebm"]

    # baseline: fid 10, 12, 14 -> mean 12, sample std 2; no differences against itself
    assert (base["n_seeds"], base["seeds"], base["fid_n"]) == ("3", "0 1 2", "3")
    assert float(base["fid_mean"]) == 12.0 and float(base["fid_std"]) == 2.0
    assert base["fid_diff"] == base["fid_diff_ci95_lo"] == base["fid_diff_ci95_hi"] == ""
    assert float(base["auroc_interpolation_marginal_mean"]) == pytest.approx(0.85)
    assert float(base["auroc_interpolation_marginal_std"]) == pytest.approx(0.05)

    # no_norm_split: fid of s1 missing -> n 2, mean (20 + 23) / 2, std 3 / sqrt(2), never a zero
    assert (split["n_seeds"], split["fid_n"]) == ("3", "2")
    assert float(split["fid_mean"]) == 21.5
    assert float(split["fid_std"]) == pytest.approx(2.1213203, abs=1e-6)
    assert float(split["fid_diff"]) == 9.5
    lo, hi = float(split["fid_diff_ci95_lo"]), float(split["fid_diff_ci95_hi"])
    assert (lo, hi) == pytest.approx((1.8993584, 17.1006416), abs=1e-5)
    assert "fid missing for s1" in split["notes"]
    marginal = ([0.60, 0.66, 0.69], [0.80, 0.85, 0.90])
    assert float(split["auroc_interpolation_marginal_mean"]) == pytest.approx(0.65)
    assert float(split["auroc_interpolation_marginal_std"]) == pytest.approx(np.std(marginal[0], ddof=1), rel=1e-6)
    assert float(split["auroc_interpolation_marginal_diff"]) == pytest.approx(-0.2)
    got = (
        float(split["auroc_interpolation_marginal_diff_ci95_lo"]),
        float(split["auroc_interpolation_marginal_diff_ci95_hi"]),
    )
    assert got == pytest.approx(welch_reference(*marginal), rel=1e-6)
    joint = ([0.80, 0.82, 0.84], [0.98, 0.96, 0.97])
    got = (
        float(split["auroc_uniform_noise_joint_diff_ci95_lo"]),
        float(split["auroc_uniform_noise_joint_diff_ci95_hi"]),
    )
    assert got == pytest.approx(welch_reference(*joint), rel=1e-6)

    # verdict columns: Welch's p (scipy), Holm over the family of no_norm_split's five metrics (plain_ebm has one
    # seed: not tested), the verdict by direction, MDE and seeds at 80% power
    p_fid = stats.ttest_ind([20.0, 23.0], [10.0, 12.0, 14.0], equal_var=False).pvalue
    assert float(split["fid_p"]) == pytest.approx(p_fid, rel=1e-6)
    family = sorted(float(split[f"{key.column}_p"]) for key in METRICS)
    holm = np.maximum.accumulate([min(1.0, (5 - i) * p) for i, p in enumerate(family)])
    assert sorted(float(split[f"{key.column}_p_holm"]) for key in METRICS) == pytest.approx(list(holm), rel=1e-6)
    assert split["auroc_interpolation_marginal_verdict"] in ("worse", "no difference detected")
    assert float(split["fid_mde"]) > 0 and int(split["fid_seeds_needed"]) >= 2
    assert base["fid_p"] == base["fid_verdict"] == "" and plain["fid_p"] == ""

    # plain_ebm: one seed -> no std and no interval, but a difference; joint AUROC missing -> n 0, empty
    assert (plain["n_seeds"], plain["fid_std"], plain["fid_diff"]) == ("1", "", "18")
    assert plain["fid_diff_ci95_lo"] == plain["fid_diff_ci95_hi"] == ""
    assert plain["auroc_interpolation_joint_n"] == "0" and plain["auroc_interpolation_joint_mean"] == ""
    assert "auroc_interpolation_joint, auroc_uniform_noise_joint missing for all seeds" in plain["notes"]

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


def test_summarize_local_store(tmp_path):
    store_dir = tmp_path / "runs"
    populate(open_store(str(store_dir)))
    report, stdout, warnings = run_summarize(str(store_dir), tmp_path)
    out = tmp_path / "out"

    check_summary_csv(out / "summary.csv")
    check_runs_csv(out / "summary_runs.csv")
    check_hparams(store_dir / TENSORBOARD_DIR, [f"{e}-tiny-s{s}" for e, s, *_ in RUNS])

    # skipped result files: one line each, naming the file; the rest still summarizes
    assert len(warnings) == 3 and all("\n" not in line for line in warnings)
    for run_id, reason in [("byol-tiny-s1", "fid"), ("mae-tiny-s0", "missing keys"), ("moco-tiny-s0", "not valid")]:
        assert any(f"{store_dir}/{run_id}/result.json" in line and reason in line for line in warnings)

    # partial sweep: running and missing lists
    assert report.scan.running == {"moco-tiny-s1": "step 300"}
    assert "moco-tiny-s1                 step 300" in stdout
    expected_missing = [
        "byol-tiny-s0",
        "byol-tiny-s2",
        "mae-tiny-s1",
        "mae-tiny-s2",
        "moco-tiny-s2",
        "plain_ebm-tiny-s1",
        "plain_ebm-tiny-s2",
    ]
    assert report.missing == expected_missing
    grid = stdout.split("missing (7 of the 18 runs the sweeps asked for):\n")[1].splitlines()[:4]
    assert [line.split() for line in grid] == [
        ["byol", "tiny", "seeds", "0", "2"],
        ["mae", "tiny", "seeds", "1-2"],
        ["moco", "tiny", "seeds", "2"],
        ["plain_ebm", "tiny", "seeds", "1-2"],
    ]

    # the printed table
    table = stdout.splitlines()
    assert table[0].split() == [
        "experiment",
        "profile",
        "n",
        "fid",
        "mean",
        "±",
        "std",
        "interpolation",
        "m/j",
        "uniform_noise",
        "m/j",
    ]
    assert table[1].split() == ["baseline", "tiny", "3", "12.00", "±", "2.00", "0.850/0.730", "0.980/0.970"]
    assert table[2].split() == [
        "no_norm_split",
        "tiny",
        "3",
        "21.50",
        "±",
        "2.12",
        "[n=2]",
        "0.650/0.567",
        "0.910/0.820",
    ]
    assert table[3].split() == ["plain_ebm", "tiny", "1", "30.00", "0.550/-", "0.850/-"]

    # plots: FID + 2 OOD-set panels of 400 x 350 px; samples grid 3 groups x 3 seeds of 260 x 290 px
    # one row of panels (340 px, + 50 px of title): FID and AUROC levels, and a forest panel (360 px) per tested
    # metric: no_norm_split is tested on all 5
    assert imread(out / "summary.png").shape[:2] == (340 + 50, (2 + 5) * 360)
    assert imread(out / "samples_grid.png").shape[:2] == (3 * 290, 3 * 260)
    assert set(report.files) == {"summary", "runs", "plot", "samples", "report"}


def test_differences_are_within_a_profile(tmp_path):
    store = open_store(str(tmp_path / "runs"))
    paper_sets = {name: {"marginal": 0.9, "joint": 0.8} for name in ("svhn", "cifar100", "interpolation")}
    runs = [
        result("baseline", 0, 10.0, (0.8, 0.7), (0.9, 0.9)),
        result("baseline", 1, 12.0, (0.8, 0.7), (0.9, 0.9)),
        result("byol", 0, 14.0, (0.8, 0.7), (0.9, 0.9)),
        result("byol", 1, 18.0, (0.8, 0.7), (0.9, 0.9)),
        result("baseline", 0, 40.0, (0, 0), (0, 0), profile="paper") | {"auroc": paper_sets},
        result("baseline", 1, 44.0, (0, 0), (0, 0), profile="paper") | {"auroc": paper_sets},
        result("moco", 0, 50.0, (0, 0), (0, 0), profile="paper") | {"auroc": paper_sets},
        result("byol", 0, 60.0, (0.8, 0.7), (0.9, 0.9), profile="other"),
    ]
    for body in runs:
        store.write(f"{body['run_id']}/result.json", json.dumps(body).encode())
    report, _, _ = run_summarize(str(tmp_path / "runs"), tmp_path)
    _, rows = read_csv(tmp_path / "out" / "summary.csv")
    assert [(row["profile"], row["experiment"]) for row in rows] == [
        ("other", "byol"),
        ("paper", "baseline"),
        ("paper", "moco"),
        ("tiny", "baseline"),
        ("tiny", "byol"),
    ]
    other, _, moco, _, byol = rows
    assert other["fid_diff"] == "" and "no baseline runs for profile other" in other["notes"]
    assert moco["fid_diff"] == "8" and moco["fid_diff_ci95_lo"] == ""  # 50 - (40 + 44) / 2, one moco seed
    assert byol["fid_diff"] == "5"  # (14 + 18) / 2 - (10 + 12) / 2
    assert (float(byol["fid_diff_ci95_lo"]), float(byol["fid_diff_ci95_hi"])) == pytest.approx(
        welch_reference([14.0, 18.0], [10.0, 12.0]), rel=1e-6
    )
    assert moco["auroc_svhn_marginal_mean"] == "0.9" and byol["auroc_svhn_marginal_n"] == "0"
    # a row of panels per profile; FID and one panel per OOD set of the profile with the most sets (paper: 3)
    # a row per profile (other, paper, tiny); the widest has the two level panels and one tested metric (fid)
    assert imread(tmp_path / "out" / "summary.png").shape[:2] == (3 * 340 + 50, (2 + 1) * 360)


def test_rerun_replaces_tensorboard_sessions(tmp_path):
    store = open_store(str(tmp_path / "runs"))
    for run in RUNS[:3]:
        body = result(*run)
        store.write(f"{body['run_id']}/result.json", json.dumps(body).encode())
    run_summarize(str(tmp_path / "runs"), tmp_path)
    first = store.list(f"{TENSORBOARD_DIR}/")
    store.delete("baseline-tiny-s2/result.json")
    store.write("baseline-tiny-s2/result.json", b"garbage")
    report, stdout, warnings = run_summarize(str(tmp_path / "runs"), tmp_path)
    second = store.list(f"{TENSORBOARD_DIR}/")
    assert len(first) == 4 and len(second) == 3 and not set(first) & set(second)
    assert sorted(key.split("/")[1] for key in second if key.count("/") == 2) == [
        "baseline-tiny-s0",
        "baseline-tiny-s1",
    ]
    assert len(warnings) == 1 and "baseline-tiny-s2/result.json: not valid JSON" in warnings[0]
    assert "samples" not in report.files and "no run has a readable samples.png" in stdout


def test_partial_sweep_with_nothing_finished(tmp_path):
    store = open_store(str(tmp_path / "runs"))
    RunStore(store, "baseline-tiny-s0").save_checkpoint(100, b"x")
    RunStore(store, "baseline-tiny-s0").save_checkpoint(200, b"y")
    store.write("byol-tiny-s0/config.json", b"{}")
    record_sweep(store, ["baseline-tiny-s0", "baseline-tiny-s1", "byol-tiny-s0"])
    report, stdout, _ = run_summarize(str(tmp_path / "runs"), tmp_path)
    assert report.scan.running == {"baseline-tiny-s0": "step 200", "byol-tiny-s0": "no checkpoint yet"}
    assert "running (2)" in stdout and "nothing written" in stdout
    assert "baseline-tiny-s1" in report.missing and "baseline-tiny-s0" not in report.missing
    assert not (tmp_path / "out").exists()


def test_no_runs_are_missing_from_a_store_no_sweep_ran_into(tmp_path, monkeypatch):
    """Runs made by `local` alone: nothing was asked, so nothing is listed as missing (not the config's sweep)."""
    store = open_store(str(tmp_path / "runs"))
    store.write("baseline-tiny-s0/result.json", json.dumps(result(*RUNS[0])).encode())
    monkeypatch.chdir(tmp_path)
    report, stdout, _ = run_summarize(str(tmp_path / "runs"), tmp_path, config="experiments.toml")
    assert report.missing is None and "missing (" not in stdout and "missing:" not in stdout


def test_the_sweep_record_keeps_every_asked_run_and_reads_only_run_ids(tmp_path):
    """sweep.json is the union of the sweeps' runs; entries that are not run ids (it is data) are ignored."""
    store = open_store(str(tmp_path / "runs"))
    record_sweep(store, ["baseline-tiny-s0", "byol-tiny-smoke-s1"])
    record_sweep(store, ["baseline-tiny-s1"])
    assert asked_runs(store) == ["baseline-tiny-s0", "baseline-tiny-s1", "byol-tiny-smoke-s1"]
    store.write("sweep.json", json.dumps({"asked": ["../../etc", 3, "baseline-tiny-s2"]}).encode())
    assert asked_runs(store) == ["baseline-tiny-s2"]
    store.write("sweep.json", b"[1, 2")
    assert asked_runs(store) is None


@pytest.mark.parametrize(
    ("seeds", "text"), [([0, 1, 2, 3], "0-3"), ([4, 0, 2, 1], "0-2 4"), ([7], "7"), ([0, 2, 4], "0 2 4")]
)
def test_seed_ranges_are_compact(seeds, text):
    assert seed_ranges(seeds) == text


def test_missing_grid_is_one_line_per_experiment_and_variant():
    lines = missing_grid(["mae-tiny-s0", "mae-tiny-s1", "mae-tiny-smoke-s3", "byol-paper-s2"])
    assert [line.split() for line in lines] == [
        ["mae", "tiny", "seeds", "0-1"],
        ["mae", "tiny-smoke", "seeds", "3"],
        ["byol", "paper", "seeds", "2"],
    ]


def test_empty_missing_or_unreadable_stores_are_user_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no finished or running runs"):
        run_summarize(str(tmp_path / "empty"), tmp_path)
    with pytest.raises(UserError, match="no such directory"):
        run_summarize(str(tmp_path / "nowhere"), tmp_path)
    assert not (tmp_path / "nowhere").exists()
    open_store(str(tmp_path / "bad")).write("baseline-tiny-s0/result.json", b"\xff\xfe")
    with pytest.raises(UserError, match=r"\(1 unreadable result.json skipped\)"):
        run_summarize(str(tmp_path / "bad"), tmp_path)
    with pytest.raises(UserError, match="expected a file name ending in .csv"):
        summarize(str(tmp_path / "bad"), str(tmp_path / "summary.txt"), "")


def test_an_unwritable_output_is_a_one_line_user_error(tmp_path):
    store = open_store(str(tmp_path / "runs"))
    store.write("baseline-tiny-s0/result.json", json.dumps(result(*RUNS[0])).encode())
    (tmp_path / "blocker").write_text("a file where the output directory should be")
    out = tmp_path / "blocker" / "summary.csv"
    with pytest.raises(UserError, match=f"^cannot write {out}: [^\n]+$"):
        summarize(str(tmp_path / "runs"), str(out), "", lambda line: None)


@pytest.mark.slow  # starts python -m runner
def test_cli_exits_2_on_an_empty_store(tmp_path):
    """`python -m runner summarize` through runner.__main__.main: one line on stderr, exit code 2."""
    (tmp_path / "empty").mkdir()
    args = ["summarize", "--store", str(tmp_path / "empty"), "--out", str(tmp_path / "summary.csv")]
    env = os.environ | {"PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "runner", *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"error: store {tmp_path / 'empty'}: no finished or running runs to summarize"
    ]


@pytest.mark.slow
def test_summarize_a_real_run(tmp_path):
    """A 3-iteration run through the CLI, then summarize: its result.json parses and the run is in both CSVs."""
    store = tmp_path / "store"
    done = run_cli(*local_args(str(store), iterations=3))
    assert done.returncode == 0, done.stderr
    run_id = run_id_of(iterations=3)  # its overrides are a point: baseline-tiny-g<tag>-s0
    data = (store / run_id / "result.json").read_bytes()
    assert read_result(data, run_id).to_json() == data, "the model re-writes run.py's file unchanged"
    fid = json.loads(data)["fid"]
    assert isinstance(fid, float)

    report, stdout, warnings = run_summarize(str(store), tmp_path, config=str(REPO / "experiments.toml"))
    assert warnings == [] and [r.run_id for r in report.scan.results] == [run_id]
    _, rows = read_csv(tmp_path / "out" / "summary.csv")
    label = profile_label(read_result(data, run_id))  # the run's point keeps it apart: "tiny @ sgld.steps=5, ..."
    assert label.startswith("tiny @ ") and "train.iterations=3" in label
    assert [(row["experiment"], row["profile"], row["seeds"], row["fid_n"]) for row in rows] == [
        ("baseline", label, "0", "1")
    ]
    assert float(rows[0]["fid_mean"]) == pytest.approx(fid, rel=1e-7)
    _, runs = read_csv(tmp_path / "out" / "summary_runs.csv")
    assert [row["run_id"] for row in runs] == [run_id]
    assert runs[0]["fid"] == f"{fid:.8g}" and runs[0]["iterations"] == "3"
    cells = re.split(r"\s{2,}", stdout.splitlines()[1])  # the table's columns are two or more spaces apart
    assert cells[:3] == ["baseline", label, "1"] and cells[3].split()[0] == f"{fid:.2f}"


# --- an S3 store on the loopback moto server ---------------------------------------------------------------
def test_summarize_s3_store(s3_bucket, tmp_path):
    uri = f"s3://{s3_bucket}/ablation"
    store = open_store(uri)
    populate(store)
    report, stdout, warnings = run_summarize(uri, tmp_path)

    check_summary_csv(tmp_path / "out" / "summary.csv")
    check_runs_csv(tmp_path / "out" / "summary_runs.csv")
    assert len(warnings) == 3 and any(f"{uri}/moco-tiny-s0/result.json: not valid JSON" in line for line in warnings)
    assert report.scan.running == {"moco-tiny-s1": "step 300"}
    assert imread(tmp_path / "out" / "summary.png").shape[:2] == (340 + 50, (2 + 5) * 360)
    assert imread(tmp_path / "out" / "samples_grid.png").shape[:2] == (3 * 290, 3 * 260)

    keys = store.list(f"{TENSORBOARD_DIR}/")
    assert keys == sorted(report.tensorboard_keys) and len(keys) == 1 + len(RUNS)
    local = tmp_path / "tb"
    for key in keys:
        store.download(key, local / key)
    check_hparams(local / TENSORBOARD_DIR, [f"{e}-tiny-s{s}" for e, s, *_ in RUNS])


def test_unreachable_s3_store_is_a_user_error(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")
    monkeypatch.setenv("CLEL_S3_MAX_ATTEMPTS", "1")
    with pytest.raises(UserError, match="s3://nobucket/x .*127.0.0.1:9"):
        run_summarize("s3://nobucket/x", tmp_path)


def test_missing_bucket_is_a_user_error(s3_endpoint, tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        run_summarize("s3://no-such-bucket-here/x", tmp_path)


def test_a_collapsed_run_is_flagged_counted_in_the_mean_and_named(tmp_path):
    store = open_store(str(tmp_path / "store"))
    store.check()
    for seed, fid in enumerate([40.0, 50.0, 200.0]):  # fid_init 310.5: 200 > 0.5 x 310.5, the others learned
        body = result("baseline", seed, fid, (0.7, 0.6), (0.9, 0.8))
        store.write(f"{body['run_id']}/result.json", json.dumps(body).encode())
    _, printed, _ = run_summarize(store.uri, tmp_path)
    _, rows = read_csv(tmp_path / "out" / "summary.csv")
    (row,) = rows
    assert row["collapsed_n"] == "1"
    assert float(row["fid_mean"]) == pytest.approx((40 + 50 + 200) / 3)  # included, not dropped
    assert "means include 1 collapsed run(s) (s2: fid > 0.5 x fid_init)" in row["notes"]
    _, runs = read_csv(tmp_path / "out" / "summary_runs.csv")
    assert [r["collapsed"] for r in runs] == ["false", "false", "true"]
    assert "96.67 ± 89.63 (1 of 3 collapsed)" in printed


# --- where the outputs go ----------------------------------------------------------------------------------
OUTPUT_NAMES = ["report.md", "samples_grid.png", "summary.csv", "summary.png", "summary_runs.csv"]


def test_summarize_writes_beside_a_local_store_by_default(tmp_path, monkeypatch):
    """No --out: the CSVs and PNGs go into the store's directory, nothing into the working directory."""
    store_dir = tmp_path / "runs"
    populate(open_store(str(store_dir)))
    (tmp_path / "experiments.toml").write_text(CONFIG)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    report = summarize(str(store_dir), None, str(tmp_path / "experiments.toml"), lambda line: None, lambda line: None)
    assert sorted(path.name for path in report.files.values()) == OUTPUT_NAMES
    assert all(path.parent == store_dir for path in report.files.values())
    check_summary_csv(store_dir / "summary.csv")
    assert list(cwd.iterdir()) == []


def test_summarize_uploads_every_file_it_writes_to_an_s3_store(s3_bucket, tmp_path, monkeypatch):
    """No --out on S3: the CSVs and PNGs are uploaded beside the runs (as tensorboard/ is), none left locally."""
    uri = f"s3://{s3_bucket}/ablation"
    store = open_store(uri)
    populate(store)
    (tmp_path / "experiments.toml").write_text(CONFIG)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    lines: list[str] = []
    summarize(uri, None, str(tmp_path / "experiments.toml"), lines.append, lambda line: None)
    root_files = sorted(key for key in store.list("") if "/" not in key)
    assert root_files == sorted([*OUTPUT_NAMES, "sweep.json"])
    store.download("summary.csv", tmp_path / "downloaded" / "summary.csv")
    check_summary_csv(tmp_path / "downloaded" / "summary.csv")
    assert list(cwd.iterdir()) == [] and any(
        line.startswith("uploaded samples_grid.png") or "summary.csv" in line
        for line in lines
        if line.startswith("uploaded")
    )
