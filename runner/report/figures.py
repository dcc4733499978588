"""summary.png and fid_by_seed.png: what the verdicts rest on, drawn so that a reader can see it.

summary.png, one row per profile: FID per seed (log axis, a dot per seed, the median as a bar, failed runs as red
crosses), the FID ratio to the baseline (log axis: the Hodges-Lehmann ratio and its 95% bootstrap interval per
arm, the seeds' ratios to the baseline's median as dots), the primary AUROC per seed, its shift to the baseline,
and every secondary endpoint's shift in one panel. Colours: a Holm-adjusted verdict (green better, red worse),
grey otherwise. fid_by_seed.png is the first panel alone, for the README.
"""

import io
from pathlib import Path
from typing import Any

import numpy as np

from runner.report.files import write_output
from runner.report.stats import BASELINE, FID, Group, MetricKey
from runner.report.verdicts import BETTER, PRIMARY, SATURATED, WORSE, Comparison

DPI = 100
PANEL = (3.8, 3.4)  # inches: 380 x 340 pixels
VERDICT_COLORS = {BETTER: "tab:green", WORSE: "tab:red"}
NEUTRAL = "0.35"
AUROC_PRIMARY = PRIMARY[1]


def _save(fig: Any, path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    write_output(path, buffer.getvalue())


def _log_ticks(axis: Any, low: float, high: float) -> None:
    """About five ticks spread geometrically over [low, high], labelled as plain numbers (2 significant digits);
    no minor labels (they overlap on a narrow log axis)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    if not (low > 0 and high > 0):
        return
    if high / low < 1.05:
        low, high = low / 1.05, high * 1.05
    ticks = sorted({float(f"{v:.2g}") for v in np.geomspace(low, high, 5)})
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(NullFormatter())


def _arm_axis(ax: Any, groups: list[Group]) -> None:
    ax.set_xticks(range(len(groups)), [g.experiment for g in groups], rotation=35, ha="right", fontsize=7)
    ax.set_xlim(-0.6, len(groups) - 0.4)
    ax.grid(axis="y", alpha=0.3, which="both")


def fid_by_seed(ax: Any, groups: list[Group], title: str = "") -> None:
    """FID per seed on a log axis: dots, the median as a bar, failed runs as red crosses; baseline's median dashed."""
    features = sorted({r.fid_features for g in groups for r in g.runs}) or ["?"]
    for i, g in enumerate(groups):
        values = [(r.fid, g.failed(r)) for r in g.runs if r.fid is not None and r.fid > 0]
        if not values:
            continue
        jitter = np.linspace(-0.12, 0.12, len(values))
        ok = [(i + j, fid) for j, (fid, failed) in zip(jitter, values, strict=True) if not failed]
        bad = [(i + j, fid) for j, (fid, failed) in zip(jitter, values, strict=True) if failed]
        if ok:
            ax.plot(*zip(*ok, strict=True), "o", color="C0", alpha=0.6, markersize=4)
        if bad:
            ax.plot(*zip(*bad, strict=True), "x", color="red", markersize=7)
        ax.plot([i - 0.25, i + 0.25], [np.median([f for f, _ in values])] * 2, "-", color="black", linewidth=2)
        if g.experiment == BASELINE:
            ax.axhline(np.median([f for f, _ in values]), color="black", linewidth=0.8, linestyle="--", alpha=0.5)
    ax.set_yscale("log")
    fids = [r.fid for g in groups for r in g.runs if r.fid is not None and r.fid > 0]
    if fids:
        _log_ticks(ax.yaxis, min(fids), max(fids))
    ax.set_ylabel(f"FID ({', '.join(features)}), log scale\nlower is better", fontsize=8)
    ax.set_title(title or "FID per seed: dots, median bar, x = failed run", fontsize=8, wrap=True)
    _arm_axis(ax, groups)


def _rows(groups: list[Group], key: MetricKey, comparisons: dict[tuple, Comparison]) -> list[tuple[Group, Comparison]]:
    found = []
    for g in groups:
        c = comparisons.get((g.experiment, g.profile, key))
        if c is not None and c.n and c.verdict != SATURATED:
            found.append((g, c))
    return found


def _verdict_text(c: Comparison) -> str:
    return c.verdict if c.p_holm is None else f"{c.verdict}, p_holm {c.p_holm:.2g}"


def _forest(ax: Any, rows: list[tuple[str, Comparison, np.ndarray]], ratio: bool, label: str) -> None:
    """One line per (label, comparison, the seeds' shifts): the shift and its interval, the seeds as dots."""
    for row, (_, c, seeds) in enumerate(rows):
        color = VERDICT_COLORS.get(c.verdict, NEUTRAL)
        transform = np.exp if ratio else (lambda v: v)
        ax.plot(transform(seeds), np.full(len(seeds), row) + 0.2, ".", color=color, alpha=0.35, markersize=4)
        if c.shift is not None:
            if c.shift.shift_ci is not None:
                ax.plot(transform(np.asarray(c.shift.shift_ci)), [row, row], "-", color=color, linewidth=2.5)
            ax.plot(transform(c.shift.shift), row, "D" if c.verdict in VERDICT_COLORS else "o", color=color)
    ax.axvline(1.0 if ratio else 0.0, color="black", linewidth=0.8)
    # each row's verdict under its name, in the verdict's colour: beside the axes, where no marker can hide it
    names = [f"{name}\n{_verdict_text(c)}" for name, c, _ in rows]
    ax.set_yticks(range(len(rows)), names, fontsize=6.5)
    for tick, (_, c, _) in zip(ax.get_yticklabels(), rows, strict=True):
        tick.set_color(VERDICT_COLORS.get(c.verdict, NEUTRAL))
    ax.set_ylim(len(rows) - 0.4, -0.8)
    if ratio:
        ax.set_xscale("log")
        ends = [1.0]
        for _, c, seeds in rows:
            ends += list(np.exp(seeds))
            if c.shift is not None and c.shift.shift_ci is not None:
                ends += list(np.exp(c.shift.shift_ci))
        _log_ticks(ax.xaxis, min(ends), max(ends))
    ax.set_xlabel(label, fontsize=7)
    ax.grid(axis="x", alpha=0.3, which="both")


def _seed_shifts(g: Group, base: Group, key: MetricKey) -> np.ndarray:
    values = np.asarray(g.stat(key).values, dtype=float)
    reference = np.asarray(base.stat(key).values, dtype=float)
    if key == FID:
        values, reference = np.log(values[values > 0]), np.log(reference[reference > 0])
    return values - (np.median(reference) if len(reference) else 0.0)


def _auroc_by_seed(ax: Any, groups: list[Group], key: MetricKey) -> None:
    for i, g in enumerate(groups):
        values = np.asarray(g.stat(key).values, dtype=float)
        if len(values):
            ax.plot(i + np.linspace(-0.12, 0.12, len(values)), values, "o", color="C1", alpha=0.6, markersize=4)
            ax.plot([i - 0.25, i + 0.25], [np.median(values)] * 2, "-", color="black", linewidth=2)
    ax.axhline(0.5, color="0.5", linewidth=0.8, linestyle=":")
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel(f"AUROC, {key.ood_set} {key.score}\nhigher is better; 0.5 = chance", fontsize=7)
    ax.set_title(f"{key.title} per seed (primary)", fontsize=8)
    _arm_axis(ax, groups)


def plot_summary(groups: list[Group], metrics: list[MetricKey], comparisons: list[Comparison], path: Path) -> None:
    """summary.png (see the module's docstring)."""
    from matplotlib.figure import Figure

    by_key = {(c.experiment, c.profile, c.key): c for c in comparisons}
    profiles = list(dict.fromkeys(g.profile for g in groups))
    fig = Figure(figsize=(PANEL[0] * 5, PANEL[1] * len(profiles) + 0.6), dpi=DPI, layout="constrained")
    axes = fig.subplots(len(profiles), 5, squeeze=False)
    for panels, profile in zip(axes, profiles, strict=True):
        members = [g for g in groups if g.profile == profile]
        base = next((g for g in members if g.experiment == BASELINE), None)
        fid_by_seed(panels[0], members, f"{profile}: FID per seed (x = failed run)")
        if base is None:
            for ax in panels[1:]:
                ax.set_axis_off()
            continue
        fid_rows = [(g.experiment, c, _seed_shifts(g, base, FID)) for g, c in _rows(members, FID, by_key)]
        _forest(panels[1], fid_rows, True, "FID / baseline FID (log); < 1 is better")
        panels[1].set_title("FID ratio to baseline\n(Hodges-Lehmann, 95% bootstrap)", fontsize=8)
        if any(g.has(AUROC_PRIMARY) for g in members):
            _auroc_by_seed(panels[2], members, AUROC_PRIMARY)
            rows = [
                (g.experiment, c, _seed_shifts(g, base, AUROC_PRIMARY))
                for g, c in _rows(members, AUROC_PRIMARY, by_key)
            ]
            _forest(panels[3], rows, False, "AUROC - baseline AUROC; > 0 is better")
            panels[3].set_title(f"{AUROC_PRIMARY.title}: shift", fontsize=8)
        else:
            panels[2].set_axis_off()
            panels[3].set_axis_off()
        secondary = [k for k in metrics if k not in PRIMARY]
        rows = [
            (f"{g.experiment}: {k.ood_set} {k.score}", c, _seed_shifts(g, base, k))
            for k in secondary
            for g, c in _rows(members, k, by_key)
        ]
        if rows:
            _forest(panels[4], rows, False, "AUROC - baseline AUROC; > 0 is better")
            panels[4].set_title("secondary AUROC shifts", fontsize=8)
        else:
            panels[4].set_axis_off()
    saturated = sorted({f"{c.key.column} ({c.profile})" for c in comparisons if c.verdict == SATURATED})
    note = ("\nsaturated (every run at one value, not tested): " + ", ".join(saturated)) if saturated else ""
    fig.suptitle(
        "Dots are seeds. Shifts: Hodges-Lehmann with 95% bootstrap interval; a diamond is a Holm-adjusted verdict "
        "(green better, red worse) within its question's family" + note,
        fontsize=8,
    )
    _save(fig, path)


def plot_fid_by_seed(groups: list[Group], path: Path) -> bool:
    """fid_by_seed.png: FID per seed of one profile's arms (the first profile with a baseline)."""
    from matplotlib.figure import Figure

    profile = next((g.profile for g in groups if g.experiment == BASELINE), None)
    members = [g for g in groups if g.profile == profile]
    if not members or not any(g.stat(FID).n for g in members):
        return False
    fig = Figure(figsize=(max(4.0, 0.75 * len(members) + 1.5), 3.6), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    seeds = max(len(g.runs) for g in members)
    fid_by_seed(ax, members, f"{profile}: FID of every seed ({seeds} per arm), median bar, x = failed run")
    _save(fig, path)
    return True
