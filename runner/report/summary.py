"""`summarize`: read a store, print the table and the runs still to come, write the CSVs, plots and HParams."""

import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.config import DEFAULT_CONFIG_FILE, ExperimentsFile
from runner.errors import UserError
from runner.layout import REPORT_FILE, SUMMARY_FILE, TENSORBOARD_DIR, point_tag
from runner.plan.sweep_record import read_sweep_record
from runner.report.failures import judge_runs
from runner.report.figures import plot_fid_by_seed, plot_summary
from runner.report.files import check_outputs, output_paths, write_output
from runner.report.grid import GRID_COLUMNS, Trend, find_grids, format_trends, grid_rows, plot_grids, trends
from runner.report.hparams import write_hparams
from runner.report.markdown import report_text
from runner.report.missing import missing_grid, missing_runs
from runner.report.plots import plot_sample_rows, plot_samples
from runner.report.scan import StoreScan, open_checked, scan_store
from runner.report.stats import WEAK_SEED_FACTOR, Group, group_runs, metric_keys
from runner.report.table import csv_text, run_columns, run_row, summary_columns, summary_rows
from runner.report.terminal import format_table, format_verdicts
from runner.report.verdicts import DEFAULT_EFFECT, Comparison, Effect, compare_groups, parse_effect
from runner.store import Store


@dataclass
class SummaryReport:
    """What summarize found and wrote."""

    scan: StoreScan
    groups: list[Group]
    missing: list[str] | None
    files: dict[str, Path]
    tensorboard_keys: list[str]
    comparisons: list[Comparison]
    trends: list[Trend]


def _print_progress(
    scan: StoreScan, asked: list[str] | None, points: dict[str, dict[str, Any]], log: Callable[[str], None]
) -> None:
    if scan.running:
        log(f"running ({len(scan.running)}): checkpoints or a config but no result.json")
        log("\n".join(f"  {run_id:<28} {state}" for run_id, state in scan.running.items()))
    if asked is None:
        return  # no sweep ran into this store: nothing was asked, so nothing is missing
    missing = missing_runs(asked, scan)
    if missing:
        log(f"missing ({len(missing)} of the {len(asked)} runs the sweeps asked for):")
        log("\n".join(missing_grid(missing, points)))
    else:
        log(f"missing: none of the {len(asked)} runs the sweeps asked for")


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def load_config(config: str) -> ExperimentsFile | None:
    """The experiments file, or None when it is the default and absent."""
    if not config or (config == DEFAULT_CONFIG_FILE and not Path(config).exists()):
        return None
    return ExperimentsFile(config)


def summarize(
    store_uri: str,
    out: str | None = None,
    config: str = DEFAULT_CONFIG_FILE,
    log: Callable[[str], None] = print,
    warn: Callable[[str], None] = _stderr,
    effect: str = DEFAULT_EFFECT,
    report: str | None = None,
) -> SummaryReport:
    """Summarize a store: CSVs, the figure, report.md and TensorBoard HParams; prints the tables and the runs
    still to come.

    The files go beside the runs: into a local store, or uploaded to an S3 store (and kept at `out` and `report`,
    when given, which otherwise are the store's own summary.csv and report.md).
    """
    try:
        size = parse_effect(effect)
    except ValueError as err:
        raise UserError(str(err)) from None
    if report is not None and not str(report).endswith(".md"):
        raise UserError(f"--report {report}: expected a file name ending in .md")
    experiments = load_config(config)
    store = open_checked(store_uri)
    local_root = store.local_path("")
    with tempfile.TemporaryDirectory(prefix="clel-summary-") as scratch:
        root = local_root if local_root is not None else Path(scratch)
        files = output_paths(out if out is not None else str(root / SUMMARY_FILE))
        files["report"] = Path(report).expanduser() if report is not None else root / REPORT_FILE
        check_outputs(files)
        summary = _summarize(store, files, experiments, log, warn, size, store_uri)
        if local_root is None:
            for path in summary.files.values():
                store.upload(path.name, path)
            log(f"uploaded {', '.join(path.name for path in summary.files.values())} to {store.uri}")
        return summary


def _summarize(
    store: Store,
    files: dict[str, Path],
    experiments: ExperimentsFile | None,
    log: Callable[[str], None],
    warn: Callable[[str], None],
    effect: Effect,
    store_name: str,
) -> SummaryReport:
    """The summary of one store's runs; report.md names the store as the user did (store_name), so that its
    commands run from where summarize ran."""
    tensorboard = store.local_path(TENSORBOARD_DIR)
    if tensorboard is not None and tensorboard.exists() and not tensorboard.is_dir():
        raise UserError(f"store {store.uri}: {TENSORBOARD_DIR} is not a directory; move it away")
    scan = scan_store(store)
    for run_id, reason in scan.skipped.items():
        warn(f"skipped {store.uri}/{run_id}/result.json: {reason}")
    if not scan.results and not scan.running:
        skipped = f" ({len(scan.skipped)} unreadable result.json skipped)" if scan.skipped else ""
        raise UserError(f"store {store.uri}: no finished or running runs to summarize{skipped}")
    record = read_sweep_record(store)
    asked = record.asked
    order = list(experiments.experiments) if experiments else []
    questions = experiments.questions() if experiments else {}
    groups = group_runs(scan.results, order)
    judged = judge_runs(store, scan.results)
    for g in groups:
        g.samples = {r.run_id: judged[r.run_id] for r in g.runs if r.run_id in judged}
    metrics = metric_keys(scan.results)
    comparisons = compare_groups(groups, metrics, effect, questions)
    missing = asked and missing_runs(asked, scan)
    points = record.points | {point_tag(r.point): r.point for r in scan.results if r.point}
    grids = find_grids(scan.results, experiments)
    summary = SummaryReport(scan, groups, missing, {}, [], comparisons, trends(grids, metrics))
    if groups:
        log(format_table(groups, metrics))
        if verdicts := format_verdicts(comparisons):
            log(verdicts)
        if interactions := format_trends(summary.trends):
            log(interactions)
        if weak := [f"{r.run_id} ({ratio:.1f} x)" for g in groups for r, ratio in g.weak_seeds()]:
            log(f"weak seeds (FID above {WEAK_SEED_FACTOR:g} x the arm's median): {', '.join(weak)}")
        log(f"device: {'; '.join(sorted({r.device for g in groups for r in g.runs}))}")
    _print_progress(scan, asked, points, log)
    if not groups:
        log("no finished runs yet: nothing written")
        return summary
    rows = summary_rows(groups, metrics, comparisons, questions)
    write_output(files["summary"], csv_text(summary_columns(metrics), rows).encode())
    runs = [r for g in groups for r in g.runs]
    run_rows = [run_row(r, metrics, g) for g in groups for r in g.runs]
    write_output(files["runs"], csv_text(run_columns(metrics), run_rows).encode())
    plot_summary(groups, metrics, comparisons, files["plot"])
    summary.files = {name: files[name] for name in ("summary", "runs", "plot")}
    if plot_fid_by_seed(groups, files["fid_seeds"]):
        summary.files["fid_seeds"] = files["fid_seeds"]
    if summary.trends:
        write_output(files["grid"], csv_text(GRID_COLUMNS, grid_rows(summary.trends)).encode())
        summary.files["grid"] = files["grid"]
    if plot_grids(grids, metrics, files["grid_plot"]):
        summary.files["grid_plot"] = files["grid_plot"]
    if plot_samples(store, groups, files["samples"]):
        summary.files["samples"] = files["samples"]
        if plot_sample_rows(store, groups, files["sample_rows"]):
            summary.files["sample_rows"] = files["sample_rows"]
    else:
        log("no run has a readable samples.png: no samples grid")
    text = report_text(
        store_name,
        scan,
        groups,
        comparisons,
        missing,
        summary.files,
        files["report"],
        experiments,
        effect,
        summary.trends,
        points,
    )
    write_output(files["report"], text.encode())
    summary.files["report"] = files["report"]
    summary.tensorboard_keys = write_hparams(store, runs, metrics, comparisons)
    log("wrote " + ", ".join(str(p) for p in summary.files.values()))
    log(f"wrote {store.uri}/{TENSORBOARD_DIR}/ ({len(runs)} HParams sessions): tensorboard --logdir {store.uri}")
    return summary
