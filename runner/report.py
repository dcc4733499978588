"""Aggregate a store of finished runs into the ablation table: CSVs over seeds, plots, TensorBoard HParams.

Reads every <run_id>/result.json of a store (local directory or s3://), groups runs by experiment x profile,
and writes <out> (one row per group), <stem>_runs.csv (one row per run), <stem>.png, samples_grid.png and
<store>/tensorboard/ (one HParams session per run). A difference from `baseline` comes with a 95% Welch t
interval. README.md ("Summarizing an ablation") documents every column.
"""

import csv
import io
import json
import math
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from runner.config import DEFAULT_CONFIG_FILE, ExperimentsFile
from runner.errors import UserError
from runner.store import LATEST, RunStore, Store, open_store

BASELINE = "baseline"
TENSORBOARD_DIR = "tensorboard"
SCORES = ("marginal", "joint")
LEVEL = 0.95
RUN_ID = re.compile(r"^(?P<experiment>.+)-(?P<profile>[^-]+)-s(?P<seed>\d+)$")
DPI = 100
PANEL_INCHES = (4.0, 3.5)  # one metric panel of summary.png: 400 x 350 pixels
CELL_INCHES = (2.6, 2.9)  # one run's samples in samples_grid.png: 260 x 290 pixels
HPARAMS = ("experiment", "profile", "crl", "norm_direction_split", "seed", "use_generated_negatives")

NUMBER = (int, float)
REQUIRED: dict[str, tuple[type, ...]] = {
    "experiment": (str,),
    "profile": (str,),
    "seed": (int,),
    "run_id": (str,),
    "iterations": (int,),
    "wall_s": NUMBER,
    "device": (str,),
    "crl": (str,),
    "norm_direction_split": (bool,),
    "use_generated_negatives": (bool, str),
    "fid": (*NUMBER, type(None)),
    "auroc": (dict,),
}
OPTIONAL: dict[str, tuple[type, ...]] = {
    "fid_features": (str,),
    "fid_init": (*NUMBER, type(None)),
    "fid_protocol": (str,),
    "notes": (list,),
    "config_hash": (str,),
    "torch": (str,),
}


# --- reading results --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MetricKey:
    """One metric: FID (ood_set None) or the AUROC of one score against one OOD set."""

    ood_set: str | None = None
    score: str | None = None

    @property
    def column(self) -> str:
        """Its name in the CSVs: fid or auroc_<set>_<score>."""
        return "fid" if self.ood_set is None else f"auroc_{self.ood_set}_{self.score}"

    @property
    def tag(self) -> str:
        """Its TensorBoard tag: fid or auroc/<set>/<score>."""
        return "fid" if self.ood_set is None else f"auroc/{self.ood_set}/{self.score}"


FID = MetricKey()


@dataclass(frozen=True)
class RunResult:
    """A finished run's result.json, validated; missing or non-finite metrics are None."""

    run_id: str
    experiment: str
    profile: str
    seed: int
    iterations: int
    wall_s: float
    device: str
    crl: str
    norm_direction_split: bool
    use_generated_negatives: bool | str
    fid: float | None
    auroc: dict[str, dict[str, float | None]]
    fid_features: str = ""
    fid_init: float | None = None
    fid_protocol: str = ""
    notes: tuple[str, ...] = ()
    config_hash: str = ""
    torch: str = ""

    def value(self, key: MetricKey) -> float | None:
        """The metric's value, None where the run has none."""
        if key.ood_set is None:
            return self.fid
        return self.auroc.get(key.ood_set, {}).get(key.score)

    def has(self, key: MetricKey) -> bool:
        """Whether the run was evaluated on the metric at all (FID always; AUROC when it has that OOD set)."""
        return key.ood_set is None or key.ood_set in self.auroc


def _type_ok(value: Any, types: tuple[type, ...]) -> bool:
    if isinstance(value, bool) and bool not in types:
        return False
    return isinstance(value, types)


def _type_names(types: tuple[type, ...]) -> str:
    names = {int: "integer", float: "number", str: "string", bool: "boolean", dict: "object", list: "list"}
    return " or ".join(names.get(t, "null") for t in types if not (t is int and float in types))


def _metric(value: Any, where: str, notes: list[str]) -> float | None:
    if value is None:
        return None
    if not _type_ok(value, NUMBER):
        raise ValueError(f"{where}: expected a number or null, got {json.dumps(value)[:40]}")
    if not math.isfinite(value):
        notes.append(f"{where} is {value}: counted as missing")
        return None
    return float(value)


def _parse_auroc(raw: dict[str, Any], notes: list[str]) -> dict[str, dict[str, float | None]]:
    auroc = {}
    for name, scores in raw.items():
        if not isinstance(scores, dict):
            raise ValueError(f"auroc.{name}: expected an object with marginal and joint, got {json.dumps(scores)[:40]}")
        auroc[name] = {score: _metric(scores.get(score), f"auroc.{name}.{score}", notes) for score in SCORES}
    return auroc


def _check_fields(raw: Any, run_id: str) -> None:
    if not isinstance(raw, dict):
        raise ValueError(f"expected a JSON object, got {type(raw).__name__}")
    missing = [key for key in REQUIRED if key not in raw]
    if missing:
        raise ValueError(f"missing keys {', '.join(missing)} (not a result.json of this runner?)")
    for key, types in (REQUIRED | OPTIONAL).items():
        if key in raw and not _type_ok(raw[key], types):
            raise ValueError(f"{key}: expected {_type_names(types)}, got {json.dumps(raw[key])[:40]}")
    if not all(isinstance(note, str) for note in raw.get("notes", [])):
        raise ValueError("notes: expected a list of strings")
    expected = f"{raw['experiment']}-{raw['profile']}-s{raw['seed']}"
    if raw["run_id"] != expected or run_id != expected:
        raise ValueError(f"run_id {raw['run_id']!r} does not match {expected!r} and its directory {run_id!r}")


def parse_result(data: bytes, run_id: str) -> RunResult:
    """Validate one result.json (of the run directory run_id); ValueError says what is wrong."""
    try:
        raw = json.loads(data)
    except ValueError as err:
        raise ValueError(f"not valid JSON ({err})") from None
    _check_fields(raw, run_id)
    notes = list(raw.get("notes", []))
    fid = _metric(raw["fid"], "fid", notes)
    auroc = _parse_auroc(raw["auroc"], notes)
    optional = {key: raw[key] for key in ("fid_features", "fid_protocol", "config_hash", "torch") if key in raw}
    return RunResult(
        run_id=run_id,
        experiment=raw["experiment"],
        profile=raw["profile"],
        seed=raw["seed"],
        iterations=raw["iterations"],
        wall_s=float(raw["wall_s"]),
        device=raw["device"],
        crl=raw["crl"],
        norm_direction_split=raw["norm_direction_split"],
        use_generated_negatives=raw["use_generated_negatives"],
        fid=fid,
        auroc=auroc,
        fid_init=_metric(raw.get("fid_init"), "fid_init", notes),
        notes=tuple(notes),
        **optional,
    )


@dataclass
class StoreScan:
    """What a store holds: finished runs, runs without result.json yet, and skipped result files."""

    results: list[RunResult] = field(default_factory=list)
    running: dict[str, str] = field(default_factory=dict)  # run_id -> "step N" / "no checkpoint yet"
    skipped: dict[str, str] = field(default_factory=dict)  # run_id -> why its result.json was skipped

    def present(self) -> set[str]:
        """Every run directory seen, whatever its state."""
        return {r.run_id for r in self.results} | set(self.running) | set(self.skipped)


def _run_files(store: Store) -> dict[str, set[str]]:
    runs: dict[str, set[str]] = {}
    for key in store.list(""):
        run_id, sep, rest = key.partition("/")
        if sep and run_id != TENSORBOARD_DIR:
            runs.setdefault(run_id, set()).add(rest)
    return runs


def _progress(store: Store, run_id: str, names: set[str]) -> str:
    if LATEST not in names:
        return "no checkpoint yet"
    step = RunStore(store, run_id).latest_step()
    return "checkpoint pointer unreadable" if step is None else f"step {step}"


def scan_store(store: Store) -> StoreScan:
    """Read every <run_id>/result.json; runs with checkpoints or a config but no result are in progress."""
    scan = StoreScan()
    for run_id, names in sorted(_run_files(store).items()):
        if "result.json" in names:
            try:
                scan.results.append(parse_result(store.read(f"{run_id}/result.json"), run_id))
            except ValueError as err:
                scan.skipped[run_id] = str(err)
            except KeyError:
                continue  # removed between listing and reading
        elif LATEST in names or "config.json" in names:
            scan.running[run_id] = _progress(store, run_id, names)
    return scan


# --- statistics --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Stat:
    """A metric over the seeds that have it: n, mean, sample std (ddof=1, None when n < 2)."""

    values: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return float(np.mean(self.values)) if self.values else None

    @property
    def std(self) -> float | None:
        return float(np.std(self.values, ddof=1)) if self.n >= 2 else None


def welch_interval(a: Iterable[float], b: Iterable[float], level: float = LEVEL) -> tuple[float, float] | None:
    """Welch's t interval for mean(a) - mean(b) (Welch-Satterthwaite df); None when a side has < 2 values."""
    x, y = np.fromiter(a, dtype=float), np.fromiter(b, dtype=float)
    if len(x) < 2 or len(y) < 2:
        return None
    diff = float(x.mean() - y.mean())
    vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    se = math.sqrt(vx + vy)
    if se == 0:
        return diff, diff
    df = (vx + vy) ** 2 / (vx**2 / (len(x) - 1) + vy**2 / (len(y) - 1))
    half = float(stats.t.ppf(0.5 + level / 2, df)) * se
    return diff - half, diff + half


@dataclass
class Group:
    """The runs of one experiment x profile, ordered by seed."""

    experiment: str
    profile: str
    runs: list[RunResult]

    def stat(self, key: MetricKey) -> Stat:
        """The metric over the seeds that have it."""
        return Stat(tuple(v for r in self.runs if (v := r.value(key)) is not None))

    def has(self, key: MetricKey) -> bool:
        """Whether any run of the group was evaluated on the metric."""
        return any(r.has(key) for r in self.runs)


def metric_keys(results: Iterable[RunResult]) -> list[MetricKey]:
    """FID, then marginal and joint AUROC per OOD set, sets in alphabetical order."""
    sets = sorted({name for r in results for name in r.auroc})
    return [FID, *(MetricKey(name, score) for name in sets for score in SCORES)]


def _experiment_rank(order: list[str]) -> Callable[[str], tuple[int, int, str]]:
    position = {name: i for i, name in enumerate(order)}
    return lambda name: (name != BASELINE, position.get(name, len(position)), name)


def group_runs(results: Iterable[RunResult], order: list[str] | None = None) -> list[Group]:
    """Groups by profile (alphabetical), then experiment (baseline, then `order`, then alphabetical)."""
    groups: dict[tuple[str, str], list[RunResult]] = {}
    for r in results:
        groups.setdefault((r.experiment, r.profile), []).append(r)
    rank = _experiment_rank(order or [])
    keys = sorted(groups, key=lambda k: (k[1], rank(k[0])))
    return [Group(exp, profile, sorted(groups[exp, profile], key=lambda r: r.seed)) for exp, profile in keys]


def difference(group: Group, base: Group | None, key: MetricKey) -> tuple[float | None, float | None, float | None]:
    """(mean - baseline mean, 95% Welch interval low, high); None where not defined."""
    if base is None or base is group:
        return None, None, None
    a, b = group.stat(key), base.stat(key)
    if not a.n or not b.n:
        return None, None, None
    interval = welch_interval(a.values, b.values)
    return a.mean - b.mean, *(interval or (None, None))


# --- CSV ---------------------------------------------------------------------------------------------------
def summary_columns(metrics: list[MetricKey]) -> list[str]:
    """summary.csv's columns, in order."""
    per_metric = ("n", "mean", "std", "diff", "diff_ci95_lo", "diff_ci95_hi")
    metric_columns = [f"{key.column}_{part}" for key in metrics for part in per_metric]
    tail = ["iterations", "wall_h_mean", "wall_h_total", "device", "fid_features", "notes"]
    return ["experiment", "profile", "n_seeds", "seeds", *metric_columns, *tail]


def run_columns(metrics: list[MetricKey]) -> list[str]:
    """summary_runs.csv's columns, in order."""
    head = ["run_id", "experiment", "profile", "seed", "crl", "norm_direction_split", "use_generated_negatives"]
    metric_columns = ["fid", "fid_features", "fid_init", *(key.column for key in metrics if key.ood_set)]
    tail = ["iterations", "wall_h", "device", "torch", "config_hash", "fid_protocol", "notes"]
    return [*head, *metric_columns, *tail]


def _distinct(values: Iterable[Any]) -> Any:
    unique = sorted(set(values), key=str)
    return unique[0] if len(unique) == 1 else "; ".join(str(v) for v in unique)


def _missing_notes(group: Group, metrics: list[MetricKey]) -> list[str]:
    by_seeds: dict[tuple[int, ...], list[str]] = {}
    for key in metrics:
        seeds = tuple(r.seed for r in group.runs if r.value(key) is None)
        if seeds and group.has(key):
            by_seeds.setdefault(seeds, []).append(key.column)
    every = tuple(r.seed for r in group.runs)
    return [
        f"{', '.join(columns)} missing for {'all seeds' if seeds == every else ' '.join(f's{s}' for s in seeds)}"
        for seeds, columns in by_seeds.items()
    ]


def _group_notes(group: Group, base: Group | None, metrics: list[MetricKey]) -> list[str]:
    notes = _missing_notes(group, metrics)
    if len({r.iterations for r in group.runs}) > 1:
        notes.append("iterations differ across seeds")
    if len({r.fid_features for r in group.runs}) > 1:
        notes.append("fid_features differ across seeds: fid mixes feature networks")
    if base is None:
        notes.append(f"no {BASELINE} runs for profile {group.profile}: no differences")
    return notes


def summary_row(group: Group, base: Group | None, metrics: list[MetricKey]) -> dict[str, Any]:
    """One summary.csv row: per-metric n/mean/std and difference from the baseline with its interval."""
    row: dict[str, Any] = {
        "experiment": group.experiment,
        "profile": group.profile,
        "n_seeds": len(group.runs),
        "seeds": " ".join(str(r.seed) for r in group.runs),
    }
    for key in metrics:
        stat = group.stat(key)
        diff, lo, hi = difference(group, base, key)
        parts = {"n": stat.n, "mean": stat.mean, "std": stat.std, "diff": diff, "diff_ci95_lo": lo, "diff_ci95_hi": hi}
        row |= {f"{key.column}_{part}": value for part, value in parts.items()}
    hours = [r.wall_s / 3600 for r in group.runs]
    return row | {
        "iterations": _distinct(r.iterations for r in group.runs),
        "wall_h_mean": float(np.mean(hours)),
        "wall_h_total": float(np.sum(hours)),
        "device": _distinct(r.device for r in group.runs),
        "fid_features": _distinct(r.fid_features for r in group.runs),
        "notes": "; ".join(_group_notes(group, base, metrics)),
    }


def summary_rows(groups: list[Group], metrics: list[MetricKey]) -> list[dict[str, Any]]:
    """summary.csv's rows; differences are against the baseline of the same profile."""
    baselines = {g.profile: g for g in groups if g.experiment == BASELINE}
    return [summary_row(g, baselines.get(g.profile), metrics) for g in groups]


def run_row(r: RunResult, metrics: list[MetricKey]) -> dict[str, Any]:
    """One summary_runs.csv row; missing metrics are empty and named in notes."""
    missing = [key.column for key in metrics if r.has(key) and r.value(key) is None]
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
    }
    row |= {key.column: r.value(key) for key in metrics if key.ood_set}
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


def write_atomic(path: Path, data: bytes) -> None:
    """Write a local file completely or not at all; UserError if the location is not writable."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # open() honours the umask, unlike mkstemp
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise UserError(f"cannot write {path}: {err.strerror or err}") from None


# --- text output -------------------------------------------------------------------------------------------
def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _fid_cell(group: Group) -> str:
    stat = group.stat(FID)
    if stat.mean is None:
        return "-"
    text = _fmt(stat.mean, 2) + ("" if stat.std is None else f" ± {stat.std:.2f}")
    return text if stat.n == len(group.runs) else f"{text} [n={stat.n}]"


def format_table(groups: list[Group], metrics: list[MetricKey]) -> str:
    """An aligned text table: experiment, profile, n, fid mean ± std, AUROC marginal/joint means per OOD set."""
    sets = sorted({key.ood_set for key in metrics if key.ood_set})
    header = ["experiment", "profile", "n", "fid mean ± std", *(f"{name} m/j" for name in sets)]
    rows = [header]
    for g in groups:
        aurocs = [
            "/".join(_fmt(g.stat(MetricKey(name, score)).mean, 3) for score in SCORES) if g.has(MetricKey(name)) else ""
            for name in sets
        ]
        rows.append([g.experiment, g.profile, str(len(g.runs)), _fid_cell(g), *aurocs])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    legend = "fid: mean ± sample std over seeds ([n=k]: only k seeds have it); <set> m/j: mean AUROC marginal/joint"
    return "\n".join([*lines, legend])


# --- plots -------------------------------------------------------------------------------------------------
def _save_figure(fig: Any, path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    write_atomic(path, buffer.getvalue())


def _panels(groups: list[Group], metrics: list[MetricKey]) -> list[tuple[str, list[MetricKey]]]:
    features = _distinct(r.fid_features for g in groups for r in g.runs) or "?"
    panels = [(f"FID ({features}), lower is better", [FID])]
    for name in sorted({key.ood_set for key in metrics if key.ood_set and any(g.has(key) for g in groups)}):
        panels.append((f"AUROC vs {name}, higher is better", [MetricKey(name, score) for score in SCORES]))
    return panels


def _draw_series(ax: Any, groups: list[Group], key: MetricKey, offset: float, color: str) -> None:
    points = [(i, g.stat(key)) for i, g in enumerate(groups) if g.stat(key).n]
    if not points:
        return
    x = np.array([i for i, _ in points]) + offset
    means = [s.mean for _, s in points]
    errors = [s.std or 0.0 for _, s in points]
    ax.errorbar(x, means, yerr=errors, fmt="o", color=color, capsize=4, label=key.score or "fid")
    for xi, (_, s) in zip(x, points, strict=True):
        ax.plot(np.full(s.n, xi), s.values, ".", color=color, alpha=0.35, markersize=4)


def _draw_baseline(ax: Any, base: Group | None, key: MetricKey, color: str) -> None:
    stat = base.stat(key) if base else Stat(())
    if stat.mean is None:
        return
    ax.axhline(stat.mean, color=color, linestyle="--", linewidth=1)
    if stat.std:
        ax.axhspan(stat.mean - stat.std, stat.mean + stat.std, color=color, alpha=0.12, linewidth=0)


def _draw_panel(ax: Any, groups: list[Group], keys: list[MetricKey], title: str) -> None:
    base = next((g for g in groups if g.experiment == BASELINE), None)
    title += "" if base else f" (no {BASELINE} runs)"
    for i, key in enumerate(keys):
        color, offset = f"C{i}", (i - (len(keys) - 1) / 2) * 0.3
        _draw_baseline(ax, base, key, color)
        _draw_series(ax, groups, key, offset, color)
    ax.set_xticks(range(len(groups)), [g.experiment for g in groups], rotation=30, ha="right")
    ax.set_xlim(-0.6, len(groups) - 0.4)
    ax.set_title(title, fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    if len(keys) > 1:
        ax.legend(fontsize=8)


def plot_summary(groups: list[Group], metrics: list[MetricKey], path: Path) -> tuple[int, int]:
    """summary.png: a row per profile, a panel per metric group (FID, AUROC per OOD set); returns its pixel size."""
    from matplotlib.figure import Figure

    profiles = sorted({g.profile for g in groups})
    by_profile = {p: [g for g in groups if g.profile == p] for p in profiles}
    panels = {p: _panels(by_profile[p], metrics) for p in profiles}
    ncols = max(len(v) for v in panels.values())
    size = (PANEL_INCHES[0] * ncols, PANEL_INCHES[1] * len(profiles))
    fig = Figure(figsize=size, dpi=DPI, layout="constrained")
    fig.suptitle("mean ± sample std over seeds (dots: seeds); dashed line and band: baseline mean ± std", fontsize=9)
    axes = fig.subplots(len(profiles), ncols, squeeze=False)
    for row, profile in enumerate(profiles):
        for col, ax in enumerate(axes[row]):
            if col < len(panels[profile]):
                title, keys = panels[profile][col]
                _draw_panel(ax, by_profile[profile], keys, f"{profile}: {title}")
            else:
                ax.set_axis_off()
    _save_figure(fig, path)
    return round(size[0] * DPI), round(size[1] * DPI)


def _read_png(store: Store, key: str) -> np.ndarray | None:
    from matplotlib.image import imread

    try:
        return imread(io.BytesIO(store.read(key)), format="png")
    except (KeyError, OSError, ValueError, SyntaxError):
        return None


def plot_samples(store: Store, groups: list[Group], path: Path) -> int:
    """samples_grid.png: each run's samples.png titled with its run id, a row per group; returns images placed."""
    from matplotlib.figure import Figure

    ncols = max(len(g.runs) for g in groups)
    fig = Figure(figsize=(CELL_INCHES[0] * ncols, CELL_INCHES[1] * len(groups)), dpi=DPI, layout="constrained")
    axes = fig.subplots(len(groups), ncols, squeeze=False)
    placed = 0
    for row, group in enumerate(groups):
        for col, ax in enumerate(axes[row]):
            ax.set_axis_off()
            if col >= len(group.runs):
                continue
            run_id = group.runs[col].run_id
            ax.set_title(run_id, fontsize=8)
            image = _read_png(store, f"{run_id}/samples.png")
            if image is None:
                ax.text(0.5, 0.5, "no readable samples.png", ha="center", va="center", fontsize=8)
                continue
            ax.imshow(image, cmap="gray", interpolation="nearest")
            placed += 1
    if placed:
        _save_figure(fig, path)
    return placed


# --- TensorBoard HParams -----------------------------------------------------------------------------------
def hparam_values(r: RunResult) -> dict[str, Any]:
    """A run's hparams; use_generated_negatives as a string ("true", "false", "n/a") so it has one type."""
    negatives = r.use_generated_negatives
    return {name: getattr(r, name) for name in HPARAMS} | {
        "use_generated_negatives": negatives if isinstance(negatives, str) else str(negatives).lower()
    }


def _event(summary: Any, step: int = 0) -> Any:
    from tensorboard.compat.proto import event_pb2

    return event_pb2.Event(wall_time=time.time(), step=step, summary=summary)


def _experiment_summary(results: list[RunResult], metrics: list[MetricKey]) -> Any:
    from tensorboard.plugins.hparams import summary_v2 as hp

    values = [hparam_values(r) for r in results]
    hparams = [hp.HParam(name, hp.Discrete(sorted({v[name] for v in values}))) for name in HPARAMS]
    described = [hp.Metric(key.tag, display_name=key.column) for key in metrics]
    return hp.hparams_config_pb(hparams, described, time_created_secs=time.time())


def _session_events(r: RunResult, metrics: list[MetricKey]) -> list[Any]:
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
    from tensorboard.plugins.hparams import summary_v2 as hp

    now = time.time()
    end = plugin_data_pb2.HParamsPluginData(
        session_end_info=plugin_data_pb2.SessionEndInfo(status=api_pb2.STATUS_SUCCESS, end_time_secs=now)
    )
    end_summary = summary_pb2.Summary()
    end_summary.value.add(
        tag=metadata.SESSION_END_INFO_TAG, metadata=metadata.create_summary_metadata(end), tensor=metadata.NULL_TENSOR
    )
    scalars = summary_pb2.Summary()
    for key in metrics:
        if (value := r.value(key)) is not None:
            scalars.value.add(tag=key.tag, simple_value=value)
    start = hp.hparams_pb(hparam_values(r), trial_id=r.run_id, start_time_secs=now)
    return [_event(start), _event(scalars, r.iterations), _event(end_summary, r.iterations)]


def _write_events(logdir: Path, events: list[Any]) -> None:
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(logdir))
    for event in events:
        writer.add_event(event)
    writer.close()


def write_hparams(store: Store, results: list[RunResult], metrics: list[MetricKey]) -> list[str]:
    """<store>/tensorboard/: the HParams experiment, and a session per run (tensorboard/<run_id>/) with its metrics.

    Written to a temporary directory, uploaded, then every older file under tensorboard/ is deleted, so
    re-running replaces the sessions (and drops runs no longer summarized). Returns the keys written.
    """
    written = []
    with tempfile.TemporaryDirectory(prefix="clel-tensorboard-") as tmp:
        root = Path(tmp)
        _write_events(root, [_event(_experiment_summary(results, metrics))])
        for r in results:
            _write_events(root / r.run_id, _session_events(r, metrics))
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            key = f"{TENSORBOARD_DIR}/{path.relative_to(root).as_posix()}"
            store.upload(key, path)
            written.append(key)
    for old in store.list(f"{TENSORBOARD_DIR}/"):
        if old not in written:
            store.delete(old)
    return written


# --- partial sweeps ----------------------------------------------------------------------------------------
def load_config(config: str) -> ExperimentsFile | None:
    """The experiments file, or None when it is the default and absent (then no missing runs are listed)."""
    if not config or (config == DEFAULT_CONFIG_FILE and not Path(config).exists()):
        return None
    return ExperimentsFile(config)


def missing_runs(experiments: ExperimentsFile, scan: StoreScan) -> list[str]:
    """The sweep (experiments x profiles seen in the store x [sweep] seeds) minus the run directories present."""
    present = scan.present()
    parsed = [m["profile"] for run_id in present if (m := RUN_ID.match(run_id))]
    profiles = {r.profile for r in scan.results} | {p for p in parsed if p in experiments.profiles}
    expected = [
        f"{exp}-{profile}-s{seed}"
        for profile in sorted(profiles)
        for exp in experiments.experiments
        for seed in experiments.seeds()
    ]
    return [run_id for run_id in expected if run_id not in present]


# --- the command -------------------------------------------------------------------------------------------
@dataclass
class SummaryReport:
    """What summarize found and wrote."""

    scan: StoreScan
    groups: list[Group]
    missing: list[str] | None
    files: dict[str, Path]
    tensorboard_keys: list[str]


def output_paths(out: str) -> dict[str, Path]:
    """summary: <out>; runs: <stem>_runs.csv; plot: <stem>.png; samples: samples_grid.png, all beside <out>."""
    if "://" in out:
        raise UserError(f"--out {out}: expected a local file path")
    path = Path(out).expanduser()
    if path.suffix.lower() != ".csv":
        raise UserError(f"--out {out}: expected a file name ending in .csv")
    return {
        "summary": path,
        "runs": path.with_name(f"{path.stem}_runs.csv"),
        "plot": path.with_suffix(".png"),
        "samples": path.with_name("samples_grid.png"),
    }


def open_checked(uri: str) -> Store:
    """The store, after its reachability check; a local store must already exist."""
    store = open_store(uri)
    root = store.local_path("")
    if root is not None and not root.is_dir():
        raise UserError(f"store {store.uri}: no such directory")
    store.check()
    return store


def _print_progress(scan: StoreScan, missing: list[str] | None, seeds: list[int], log: Callable[[str], None]) -> None:
    if scan.running:
        log(f"running ({len(scan.running)}): checkpoints or a config but no result.json")
        log("\n".join(f"  {run_id:<28} {state}" for run_id, state in scan.running.items()))
    if missing is None:
        log("missing: not listed (no experiments.toml here; pass --config)")
    elif missing:
        log(f"missing ({len(missing)}) from the sweep (experiments x profiles seen x seeds {seeds}):")
        log("\n".join(f"  {run_id}" for run_id in missing))
    else:
        log(f"missing: none (sweep seeds {seeds})")


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def summarize(
    store_uri: str,
    out: str = "summary.csv",
    config: str = DEFAULT_CONFIG_FILE,
    log: Callable[[str], None] = print,
    warn: Callable[[str], None] = _stderr,
) -> SummaryReport:
    """Summarize a store: CSVs, plots and TensorBoard HParams; prints the table and the runs still to come."""
    files = output_paths(out)
    experiments = load_config(config)
    store = open_checked(store_uri)
    scan = scan_store(store)
    for run_id, reason in scan.skipped.items():
        warn(f"skipped {store.uri}/{run_id}/result.json: {reason}")
    if not scan.results and not scan.running:
        skipped = f" ({len(scan.skipped)} unreadable result.json skipped)" if scan.skipped else ""
        raise UserError(f"store {store.uri}: no finished or running runs to summarize{skipped}")
    missing = missing_runs(experiments, scan) if experiments else None
    seeds = experiments.seeds() if experiments else []
    order = list(experiments.experiments) if experiments else []
    groups = group_runs(scan.results, order)
    metrics = metric_keys(scan.results)
    report = SummaryReport(scan, groups, missing, {}, [])
    if groups:
        log(format_table(groups, metrics))
    _print_progress(scan, missing, seeds, log)
    if not groups:
        log("no finished runs yet: nothing written")
        return report
    write_atomic(files["summary"], csv_text(summary_columns(metrics), summary_rows(groups, metrics)).encode())
    runs = [r for g in groups for r in g.runs]
    write_atomic(files["runs"], csv_text(run_columns(metrics), [run_row(r, metrics) for r in runs]).encode())
    plot_summary(groups, metrics, files["plot"])
    report.files = {name: path for name, path in files.items() if name != "samples"}
    if plot_samples(store, groups, files["samples"]):
        report.files["samples"] = files["samples"]
    else:
        log("no run has a readable samples.png: no samples grid")
    report.tensorboard_keys = write_hparams(store, runs, metrics)
    log("wrote " + ", ".join(str(p) for p in report.files.values()))
    log(f"wrote {store.uri}/{TENSORBOARD_DIR}/ ({len(runs)} HParams sessions): tensorboard --logdir {store.uri}")
    return report
