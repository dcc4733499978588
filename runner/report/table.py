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
from runner.report.stats import BASELINE, FID, SCORES, Group, MetricKey, difference, distinct
from runner.report.verdicts import SATURATED, Comparison
from runner.result import COLLAPSE_RULE, ENCODER_COLLAPSE_RULE, RunResult


def summary_columns(metrics: list[MetricKey]) -> list[str]:
    """summary.csv's columns, in order."""
    per_metric = (
        "n",
        "mean",
        "std",
        "diff",
        "diff_ci95_lo",
        "diff_ci95_hi",
        "p",
        "p_holm",
        "verdict",
        "mde",
        "seeds_needed",
    )
    metric_columns = [f"{key.column}_{part}" for key in metrics for part in per_metric]
    tail = ["iterations", "wall_h_mean", "wall_h_total", "device", "fid_features", "notes"]
    head = ["experiment", "profile", "n_seeds", "seeds", "collapsed_n", *ENCODER_SUMMARY_COLUMNS]
    return [*head, *metric_columns, *tail]


def run_columns(metrics: list[MetricKey]) -> list[str]:
    """summary_runs.csv's columns, in order."""
    head = ["run_id", "experiment", "profile", "seed", "crl", "norm_direction_split", "use_generated_negatives"]
    metric_columns = ["fid", "fid_features", "fid_init", "collapsed", *(key.column for key in metrics if key.ood_set)]
    metric_columns += ENCODER_RUN_COLUMNS
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


def summary_row(
    group: Group, base: Group | None, metrics: list[MetricKey], verdicts: dict[tuple, Comparison] | None = None
) -> dict[str, Any]:
    """One summary.csv row: per-metric n/mean/std, difference from the baseline with its interval, and the
    verdict columns (runner.report.verdicts) where the comparison was made."""
    row: dict[str, Any] = {
        "experiment": group.experiment,
        "profile": group.profile,
        "n_seeds": len(group.runs),
        "seeds": " ".join(str(r.seed) for r in group.runs),
        "collapsed_n": len(collapsed_seeds(group)),
        **encoder_summary(group),
    }
    for key in metrics:
        stat = group.stat(key)
        diff, lo, hi = difference(group, base, key)
        parts = {"n": stat.n, "mean": stat.mean, "std": stat.std, "diff": diff, "diff_ci95_lo": lo, "diff_ci95_hi": hi}
        verdict = (verdicts or {}).get((group.experiment, group.profile, key))
        if verdict is not None:
            parts |= {
                "p": verdict.p,
                "p_holm": verdict.p_holm,
                "verdict": verdict.verdict,
                "mde": verdict.mde,
                "seeds_needed": verdict.seeds_needed,
            }
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
    groups: list[Group], metrics: list[MetricKey], comparisons: list[Comparison] | None = None
) -> list[dict[str, Any]]:
    """summary.csv's rows; differences are against the baseline of the same profile."""
    baselines = {g.profile: g for g in groups if g.experiment == BASELINE}
    verdicts = {(c.experiment, c.profile, c.key): c for c in comparisons or []}
    return [summary_row(g, baselines.get(g.profile), metrics, verdicts) for g in groups]


def run_row(r: RunResult, metrics: list[MetricKey]) -> dict[str, Any]:
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
    row |= encoder_run_cells(r)
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


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _fid_cell(group: Group) -> str:
    stat = group.stat(FID)
    if stat.mean is None:
        return "-"
    text = _fmt(stat.mean, 2) + ("" if stat.std is None else f" ± {stat.std:.2f}")
    text = text if stat.n == len(group.runs) else f"{text} [n={stat.n}]"
    collapsed = collapsed_seeds(group)
    return f"{text} ({len(collapsed)} of {len(group.runs)} collapsed)" if collapsed else text


def _encoder_cell(group: Group) -> str:
    """`0.95 (0.93-0.96)` median and range of the probe on z, `; 2 collapsed` when encoders collapsed; '-' without."""
    cells = encoder_summary(group)
    if not cells or cells["probe_z_median"] is None:
        return "-"
    text = f"{cells['probe_z_median']:.3f} ({cells['probe_z_min']:.3f}-{cells['probe_z_max']:.3f})"
    return text + (f"; {cells['encoder_collapsed_n']} collapsed" if cells["encoder_collapsed_n"] else "")


def format_table(groups: list[Group], metrics: list[MetricKey]) -> str:
    """An aligned text table: experiment, profile, n, fid mean ± std, the encoder's probe on z, AUROC
    marginal/joint means per OOD set."""
    sets = sorted({key.ood_set for key in metrics if key.ood_set})
    header = ["experiment", "profile", "n", "fid mean ± std", "probe z", *(f"{name} m/j" for name in sets)]
    rows = [header]
    for g in groups:
        aurocs = [
            "/".join(_fmt(g.stat(MetricKey(name, score)).mean, 3) for score in SCORES) if g.has(MetricKey(name)) else ""
            for name in sets
        ]
        rows.append([g.experiment, g.profile, str(len(g.runs)), _fid_cell(g), _encoder_cell(g), *aurocs])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    legend = (
        f"fid: mean ± sample std over seeds ([n=k]: only k seeds have it; collapsed runs, {COLLAPSE_RULE}, are "
        "counted in the mean and named); probe z: the encoder's linear-probe accuracy on z, median (range) over "
        f"seeds, and the collapsed encoders ({ENCODER_COLLAPSE_RULE}); <set> m/j: mean AUROC marginal/joint"
    )
    return "\n".join([*lines, legend])


def _p(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1e}" if value < 1e-3 else f"{value:.3f}"


def _g(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def format_verdicts(comparisons: list[Comparison]) -> str:
    """The verdict table: one line per arm x metric tested against its baseline, saturated metrics in a note."""
    tested = [c for c in comparisons if c.verdict != SATURATED and c.n]  # not an arm without the metric
    if not tested:
        return ""
    header = ["profile", "arm", "metric", "n/base", "diff [95% CI]", "p", "p_holm", "verdict", "mde", "seeds"]
    rows = [header]
    for c in tested:
        interval = f" [{_g(c.ci95[0])}, {_g(c.ci95[1])}]" if c.ci95 else ""
        rows.append(
            [
                c.profile,
                c.experiment,
                c.key.column,
                f"{c.n}/{c.n_baseline}",
                f"{_g(c.diff)}{interval}",
                _p(c.p),
                _p(c.p_holm),
                c.verdict,
                _g(c.mde),
                "-" if c.seeds_needed is None else str(c.seeds_needed),
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    families = {}
    for c in comparisons:
        families[c.profile] = families.get(c.profile, 0) + c.tested
    family_text = ", ".join(f"{n} for {profile}" for profile, n in families.items())
    saturated = sorted({f"{c.key.column} ({c.profile})" for c in comparisons if c.verdict == SATURATED})
    legend = [
        f"verdicts: Welch's t-test against the profile's baseline, Holm-adjusted over each profile's tested "
        f"comparisons ({family_text}), at 5%; mde: the difference 80% power would detect at alpha 0.05 with these "
        "seeds; seeds: per arm, to detect the --effect size",
    ]
    if saturated:
        legend.append(f"saturated (every run at one value, not tested): {', '.join(saturated)}")
    return "\n".join([*lines, *legend])
