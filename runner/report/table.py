"""summary.csv and summary_runs.csv (one row per group, one per run), and the table printed to the terminal."""

import csv
import io
from typing import Any

import numpy as np

from runner.report.encoders import (
    ENCODER_RUN_COLUMNS,
    ENCODER_SUMMARY_COLUMNS,
    encoder_collapsed_seeds,
    encoder_run_cells,
    encoder_summary,
)
from runner.report.estimates import level
from runner.report.failures import failure_cells
from runner.report.stats import BASELINE, FID, Group, MetricKey, distinct
from runner.report.verdicts import Comparison
from runner.result import COLLAPSE_RULE, ENCODER_COLLAPSE_RULE, RunResult

FAILURE_COLUMNS = (
    "failed_n",
    "judged_n",
    "judged_on_samples_n",
    "failure_rate",
    "failure_rate_lo",
    "failure_rate_hi",
    "failure_fisher_p",
)
LEVEL_PARTS = ("n", "median", "median_lo", "median_hi", "iqm", "iqm_lo", "iqm_hi", "mean", "std")
# against the baseline, on the endpoint's scale: FID as a ratio (exp of the log-FID shift), AUROC as a shift
COMPARISON_PARTS = ("p_better", "p_better_lo", "p_better_hi", "p_rank", "p_holm", "p_welch", "family", "primary")
VERDICT_PARTS = ("verdict", "seeds_needed")


def _shift_parts(key: MetricKey) -> tuple[str, ...]:
    name = "ratio" if key == FID else "shift"
    return (name, f"{name}_lo", f"{name}_hi", f"welch_{name}_lo", f"welch_{name}_hi", f"mde_{name}")


def metric_parts(key: MetricKey) -> tuple[str, ...]:
    """The summary.csv columns of one endpoint, after its name (fid_median, auroc_noise_marginal_shift, ...)."""
    return (*LEVEL_PARTS, *_shift_parts(key), *COMPARISON_PARTS, *VERDICT_PARTS)


def summary_columns(metrics: list[MetricKey]) -> list[str]:
    """summary.csv's columns, in order."""
    metric_columns = [f"{key.column}_{part}" for key in metrics for part in metric_parts(key)]
    tail = ["iterations", "wall_h_mean", "wall_h_total", "device", "fid_features", "notes"]
    head = ["experiment", "profile", "question", "n_seeds", "seeds", *FAILURE_COLUMNS, "collapsed_n"]
    return [*head, *ENCODER_SUMMARY_COLUMNS, *metric_columns, *tail]


def run_columns(metrics: list[MetricKey]) -> list[str]:
    """summary_runs.csv's columns, in order."""
    head = ["run_id", "experiment", "profile", "seed", "crl", "norm_direction_split", "use_generated_negatives"]
    metric_columns = ["fid", "fid_features", "fid_init", "collapsed", *(key.column for key in metrics if key.ood_set)]
    metric_columns += [*SAMPLE_COLUMNS, *ENCODER_RUN_COLUMNS]
    tail = ["iterations", "wall_h", "device", "torch", "config_hash", "fid_protocol", "notes"]
    return [*head, *metric_columns, *tail]


def _missing_notes(group: Group, metrics: list[MetricKey]) -> list[str]:
    by_seeds: dict[tuple[int, ...], list[str]] = {}
    for key in metrics:
        seeds = tuple(r.seed for r in group.runs if key.value(r) is None)
        if seeds and group.has(key):
            by_seeds.setdefault(seeds, []).append(key.column)
    every = tuple(r.seed for r in group.runs)
    return [
        f"{', '.join(columns)} missing for {'all seeds' if seeds == every else ' '.join(f's{s}' for s in seeds)}"
        for seeds, columns in by_seeds.items()
    ]


def collapsed_seeds(group: Group) -> list[int]:
    """The seeds of the group whose run collapsed (runner.result.is_collapsed)."""
    return [r.seed for r in group.runs if r.collapsed]


def _group_notes(group: Group, base: Group | None, metrics: list[MetricKey]) -> list[str]:
    notes = _missing_notes(group, metrics)
    if collapsed := collapsed_seeds(group):
        seeds = " ".join(f"s{seed}" for seed in collapsed)
        notes.append(f"means include {len(collapsed)} collapsed run(s) ({seeds}: {COLLAPSE_RULE})")
    if collapsed := encoder_collapsed_seeds(group):
        seeds = " ".join(f"s{seed}" for seed in collapsed)
        notes.append(f"{len(collapsed)} encoder(s) collapsed ({seeds}: {ENCODER_COLLAPSE_RULE})")
    if len({r.iterations for r in group.runs}) > 1:
        notes.append("iterations differ across seeds")
    if len({r.fid_features for r in group.runs}) > 1:
        notes.append("fid_features differ across seeds: fid mixes feature networks")
    if base is None:
        notes.append(f"no {BASELINE} runs for profile {group.profile}: no differences")
    return notes


def _to_display(key: MetricKey, value: float | None) -> float | None:
    """A shift on the comparison scale as summary.csv shows it: a FID ratio (exp of the log shift), or AUROC."""
    if value is None:
        return None
    return float(np.exp(value)) if key == FID else value


def _pair(values: tuple[float, float] | None) -> tuple[float | None, float | None]:
    return (None, None) if values is None else values


def comparison_cells(key: MetricKey, c: Comparison) -> dict[str, Any]:
    """One endpoint's comparison columns (without the endpoint's name)."""
    name, low, high, welch_low, welch_high, mde = _shift_parts(key)
    cells: dict[str, Any] = {"family": c.family, "primary": c.primary, "verdict": c.verdict, "p_holm": c.p_holm}
    cells |= {mde: _to_display(key, c.mde), "seeds_needed": c.seeds_needed}
    if c.shift is not None:
        shift = c.shift
        cells[name] = _to_display(key, shift.shift)
        cells[low], cells[high] = (_to_display(key, v) for v in _pair(shift.shift_ci))
        cells[welch_low], cells[welch_high] = (_to_display(key, v) for v in _pair(shift.welch_ci))
        cells["p_better"] = shift.p_better
        cells["p_better_lo"], cells["p_better_hi"] = _pair(shift.p_better_ci)
        cells |= {"p_rank": shift.p_rank, "p_welch": shift.p_welch}
    return cells


def level_cells(group: Group, key: MetricKey) -> dict[str, Any]:
    """One endpoint's levels over the arm's seeds (raw FID or AUROC)."""
    found = level(np.asarray(group.stat(key).values, dtype=float))
    cells = {"n": found.n, "median": found.median, "iqm": found.iqm, "mean": found.mean, "std": found.std}
    cells["median_lo"], cells["median_hi"] = _pair(found.median_ci)
    cells["iqm_lo"], cells["iqm_hi"] = _pair(found.iqm_ci)
    return cells


def summary_row(
    group: Group,
    base: Group | None,
    metrics: list[MetricKey],
    verdicts: dict[tuple, Comparison] | None = None,
    question: str = "",
) -> dict[str, Any]:
    """One summary.csv row: the arm's failures and encoder, and per endpoint its levels and, where the comparison
    was made, its shift against the baseline with the tests and the verdict (runner.report.verdicts)."""
    row: dict[str, Any] = {
        "experiment": group.experiment,
        "profile": group.profile,
        "question": question,
        "n_seeds": len(group.runs),
        "seeds": " ".join(str(r.seed) for r in group.runs),
        **failure_cells(group, base),
        "collapsed_n": len(collapsed_seeds(group)),
        **encoder_summary(group),
    }
    for key in metrics:
        parts = level_cells(group, key)
        verdict = (verdicts or {}).get((group.experiment, group.profile, key))
        if verdict is not None:
            parts |= comparison_cells(key, verdict)
        row |= {f"{key.column}_{part}": value for part, value in parts.items()}
    hours = [r.wall_s / 3600 for r in group.runs]
    return row | {
        "iterations": distinct(r.iterations for r in group.runs),
        "wall_h_mean": float(np.mean(hours)),
        "wall_h_total": float(np.sum(hours)),
        "device": distinct(r.device for r in group.runs),
        "fid_features": distinct(r.fid_features for r in group.runs),
        "notes": "; ".join(_group_notes(group, base, metrics)),
    }


def summary_rows(
    groups: list[Group],
    metrics: list[MetricKey],
    comparisons: list[Comparison] | None = None,
    questions: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """summary.csv's rows; differences are against the baseline of the same profile."""
    baselines = {g.profile: g for g in groups if g.experiment == BASELINE}
    verdicts = {(c.experiment, c.profile, c.key): c for c in comparisons or []}
    questions = questions or {}
    return [
        summary_row(g, baselines.get(g.profile), metrics, verdicts, questions.get(g.experiment, "")) for g in groups
    ]


SAMPLE_COLUMNS = ("failed", "sample_precision", "sample_density", "sample_coverage")


def sample_cells(group: Group, r: RunResult) -> dict[str, Any]:
    """A run's failure and, where its samples were judged, their precision, density and coverage."""
    cells: dict[str, Any] = {"failed": group.failed(r)}
    quality = group.samples.get(r.run_id)
    if quality is not None:
        cells |= {"sample_precision": quality.precision, "sample_density": quality.density}
        cells["sample_coverage"] = quality.coverage
    return cells


def run_row(r: RunResult, metrics: list[MetricKey], group: Group | None = None) -> dict[str, Any]:
    """One summary_runs.csv row; missing metrics are empty and named in notes."""
    missing = [key.column for key in metrics if key.evaluated(r) and key.value(r) is None]
    notes = ([f"missing: {', '.join(missing)}"] if missing else []) + list(r.notes)
    row = {
        "run_id": r.run_id,
        "experiment": r.experiment,
        "profile": r.profile,
        "seed": r.seed,
        "crl": r.crl,
        "norm_direction_split": r.norm_direction_split,
        "use_generated_negatives": r.use_generated_negatives,
        "fid": r.fid,
        "fid_features": r.fid_features,
        "fid_init": r.fid_init,
        "collapsed": r.collapsed,
    }
    row |= {key.column: key.value(r) for key in metrics if key.ood_set}
    row |= encoder_run_cells(r) | (sample_cells(group, r) if group is not None else {})
    return row | {
        "iterations": r.iterations,
        "wall_h": r.wall_s / 3600,
        "device": r.device,
        "torch": r.torch,
        "config_hash": r.config_hash,
        "fid_protocol": r.fid_protocol,
        "notes": "; ".join(notes),
    }


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.8g}"
    return str(value)


def csv_text(columns: list[str], rows: list[dict[str, Any]]) -> str:
    """CSV with a header; None is an empty cell, booleans are true/false, floats have 8 significant digits."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([_cell(row.get(column)) for column in columns] for row in rows)
    return buffer.getvalue()
