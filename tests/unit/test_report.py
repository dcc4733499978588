"""summarize (runner.report) on a local store of made-up results: CSV statistics checked by hand and against scipy,
plots, HParams read back with TensorBoard's own event reader, partial sweeps, corrupt results. S3 stores:
tests/integration/test_report_s3.py; a real run: tests/e2e/test_report_runs.py."""

import json
import math

import numpy as np
import pytest
from matplotlib.image import imread
from scipy import stats

from runner.errors import UserError
from runner.layout import TENSORBOARD_DIR, point_tag
from runner.plan.sweep_record import asked_points, asked_runs, record_sweep
from runner.report.estimates import level
from runner.report.missing import missing_grid, seed_ranges
from runner.report.scan import read_result
from runner.report.stats import welch_interval
from runner.report.summary import summarize
from runner.store import RunStore, open_store
from tests.support.results import (
    CONFIG,
    OUTPUT_NAMES,
    RUNS,
    check_hparams,
    check_runs_csv,
    check_summary_csv,
    populate,
    read_csv,
    result,
    run_summarize,
    welch_reference,
)


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

    # the printed table: medians, with a bootstrap interval where there are two values or more
    table = stdout.splitlines()
    assert table[0].split() == [
        "experiment",
        "profile",
        "n",
        "fid",
        "median",
        "[95%",
        "CI]",
        "failed",
        "probe",
        "z",
        "interpolation",
        "m/j",
        "uniform_noise",
        "m/j",
    ]
    base_ci = level(np.array([10.0, 12.0, 14.0])).median_ci
    assert table[1].split() == [
        "baseline", "tiny", "3", "12", f"[{base_ci[0]:.4g},", f"{base_ci[1]:.4g}]", "0/3", "-", "0.850/0.740",
        "0.980/0.970",
    ]  # fmt: skip
    assert table[2].split()[:4] == ["no_norm_split", "tiny", "3", "21.5"] and "[n=2]" in table[2]
    assert table[3].split() == ["plain_ebm", "tiny", "1", "30", "0/1", "-", "0.550/-", "0.850/-"]

    # samples grid 3 groups x 3 seeds of 260 x 290 px; summary.png: one row of five 380 x 340 px panels per
    # profile (+ 60 px of title); fid_by_seed.png for the README
    assert imread(out / "summary.png").shape[:2] == (340 + 60, 5 * 380)
    assert imread(out / "samples_grid.png").shape[:2] == (3 * 290, 3 * 260)
    assert set(report.files) == {"summary", "runs", "plot", "fid_seeds", "samples", "sample_rows", "report"}


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
    assert other["fid_ratio"] == "" and "no baseline runs for profile other" in other["notes"]
    assert moco["fid_ratio"] == "" and moco["fid_verdict"] == "not tested"  # one moco seed: no test
    # byol (14, 18) against baseline (10, 12) of its own profile: the median of the four log ratios
    ratios = sorted(a / b for a in (14.0, 18.0) for b in (10.0, 12.0))
    assert float(byol["fid_ratio"]) == pytest.approx(math.sqrt(ratios[1] * ratios[2]))
    assert moco["auroc_svhn_marginal_median"] == "0.9" and byol["auroc_svhn_marginal_n"] == "0"
    # a row of five panels per profile (other, paper, tiny), + 60 px of title
    assert imread(tmp_path / "out" / "summary.png").shape[:2] == (3 * 340 + 60, 5 * 380)


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


def test_the_sweep_record_keeps_each_points_settings_and_only_under_its_own_tag(tmp_path):
    """Missing grid runs are named by their settings; a recorded point whose tag is not its hash is data to drop."""
    store = open_store(str(tmp_path / "runs"))
    beta = {"energy.beta": 0.1}
    tag = point_tag(beta)
    record_sweep(store, [f"baseline-tiny-{tag}-s0"], [beta, {}])
    record_sweep(store, ["baseline-tiny-s0"], [{"energy.beta": 1.0}])
    assert asked_points(store) == {tag: beta, point_tag({"energy.beta": 1.0}): {"energy.beta": 1.0}}
    record = json.loads(store.read("sweep.json"))
    record["points"]["g00000000"] = {"energy.beta": 3.0}  # a tag that is not this point's hash
    record["points"][point_tag({"energy.beta": 1.0})] = {"energy.beta": 2.0}  # settings swapped under a known tag
    store.write("sweep.json", json.dumps(record).encode())
    assert asked_points(store) == {tag: beta}
    lines = missing_grid(
        [f"no_norm_split-tiny-{tag}-s1", f"no_norm_split-tiny-smoke-{tag}-s0", "baseline-tiny-gabcdef12-s2"],
        asked_points(store),
    )
    assert [line.split() for line in lines] == [
        ["no_norm_split", "tiny", "@", "energy.beta=0.1", "seeds", "1"],
        ["no_norm_split", "tiny-smoke", "@", "energy.beta=0.1", "seeds", "0"],
        ["baseline", "tiny-gabcdef12", "seeds", "2"],
    ]


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
    # a grid point's variant is longer than any profile name: the columns still part (it once read tiny-g1234abcdseeds)
    lines = missing_grid(["baseline-tiny-smoke-g2febc910-s4", "baseline-tiny-s1", "plain_ebm-tiny-g2febc910-s0"])
    assert [line.split() for line in lines] == [
        ["baseline", "tiny-smoke-g2febc910", "seeds", "4"],
        ["baseline", "tiny", "seeds", "1"],
        ["plain_ebm", "tiny-g2febc910", "seeds", "0"],
    ]
    assert len({line.index("seeds") for line in lines}) == 1


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


def test_a_collapsed_run_is_flagged_counted_in_the_mean_and_named(tmp_path):
    store = open_store(str(tmp_path / "store"))
    store.check()
    for seed, fid in enumerate([40.0, 50.0, 200.0]):  # fid_init 310.5: 200 > 0.5 x 310.5, the others learned
        body = result("baseline", seed, fid, (0.7, 0.6), (0.9, 0.8))
        store.write(f"{body['run_id']}/result.json", json.dumps(body).encode())
    _, printed, _ = run_summarize(store.uri, tmp_path)
    _, rows = read_csv(tmp_path / "out" / "summary.csv")
    (row,) = rows
    assert row["collapsed_n"] == "1" and row["failed_n"] == "1"  # no judged samples: the backstop decides
    assert float(row["fid_mean"]) == pytest.approx((40 + 50 + 200) / 3)  # included, not dropped
    assert float(row["fid_median"]) == 50.0
    assert "means include 1 collapsed run(s) (s2: fid > 0.5 x fid_init)" in row["notes"]
    _, runs = read_csv(tmp_path / "out" / "summary_runs.csv")
    assert [r["collapsed"] for r in runs] == [r["failed"] for r in runs] == ["false", "false", "true"]
    assert printed.splitlines()[1].split()[3:4] == ["50"] and " 1/3 " in printed.splitlines()[1]


# --- where the outputs go ----------------------------------------------------------------------------------


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


def test_report_names_the_store_as_given_so_its_commands_run_where_summarize_ran(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = open_store("runs")
    for run in RUNS[:3]:
        body = result(*run)
        store.write(f"{body['run_id']}/result.json", json.dumps(body).encode())
    run_summarize("runs", tmp_path)
    text = (tmp_path / "runs" / "report.md").read_text()
    assert text.startswith("# CLEL ablation: runs\n") and str(tmp_path) not in text
    assert "`python -m runner local --exp baseline --profile tiny --seed 0 --store runs`" in text


def test_report_lists_failed_runs_per_arm_with_exact_intervals(tmp_path):
    store = open_store(str(tmp_path / "runs"))
    runs = [result("baseline", seed, 10.0 + seed, (0.8, 0.7), (1.0, 1.0)) for seed in range(4)]
    runs += [result("no_norm_split", seed, fid, (0.6, 0.5), (1.0, 0.2)) for seed, fid in enumerate((20, 300, 290, 25))]
    for body in runs:  # no samples.png: the backstop judges, and 300 and 290 are above 0.5 x fid_init (310.5)
        store.write(f"{body['run_id']}/result.json", json.dumps(body).encode())
    run_summarize(str(tmp_path / "runs"), tmp_path)
    text = (tmp_path / "runs" / "report.md").read_text()
    low, high = stats.binomtest(2, 4).proportion_ci(method="exact")
    fisher = stats.fisher_exact([[2, 2], [0, 4]]).pvalue
    assert f"| `no_norm_split` | tiny | 2 / 4 | 0.50 [{low:.2f}, {high:.2f}] | {fisher:.3f} | s1 s2 |" in text
    base_high = stats.binomtest(0, 4).proportion_ci(method="exact").high
    assert f"| `baseline` | tiny | 0 / 4 | 0.00 [0.00, {base_high:.2f}] |  | none |" in text
