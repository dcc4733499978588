"""report.md: a self-contained Markdown report of a store's ablation that renders on GitHub.

The question (each arm and what it changes, from experiments.toml), the verdict table, the figure and the
sample grid as relative links, the failed runs per arm with exact intervals, the collapsed runs, the weak seeds,
the running and missing runs, and the provenance (torch, devices, compute hours, each run's config hash and the
command that reproduces it).
"""

import os
import shlex
import time
from pathlib import Path
from typing import Any

import numpy as np

from runner.config import ExperimentsFile
from runner.plan.spec import RunSpec
from runner.report.encoders import encoder_section
from runner.report.estimates import level
from runner.report.failures import failure_cells
from runner.report.grid import Trend
from runner.report.missing import missing_grid
from runner.report.numbers import fixed, interval, number, p_value, signed
from runner.report.scan import StoreScan
from runner.report.stats import BASELINE, FID, WEAK_SEED_FACTOR, WEAK_SEED_MIN_RUNS, Group
from runner.report.terminal import mde_text, shift_text
from runner.report.verdicts import ALPHA, SATURATED, Comparison, Effect
from runner.result import RunResult


def _g(value: float | None) -> str:
    return number(value, 4)


def _p(value: float | None) -> str:
    return p_value(value)


def _link(target: Path, report: Path) -> str:
    return Path(os.path.relpath(target, report.parent)).as_posix()


def _question(groups: list[Group], experiments: ExperimentsFile | None) -> list[str]:
    lines = [
        "## The question",
        "",
        "Which parts of CLEL carry its results? Each arm changes one thing against "
        f"`{BASELINE}`; every arm is compared with the `{BASELINE}` runs of its own profile.",
        "",
    ]
    lines += ["| arm | what it changes | profile | seeds |", "| --- | --- | --- | --- |"]
    for g in groups:
        described = experiments.description(g.experiment) if experiments else ""
        seeds = " ".join(str(r.seed) for r in g.runs)
        lines.append(f"| `{g.experiment}` | {described or '-'} | {g.profile} | {seeds} |")
    return [*lines, ""]


def _verdicts(groups: list[Group], comparisons: list[Comparison], effect: Effect) -> list[str]:
    lines = ["## Verdicts", ""]
    if not comparisons:
        return [*lines, f"No arm has `{BASELINE}` runs of the same profile to be compared with.", ""]
    lines.append(
        "Each arm against the baseline of its profile (docs/STATISTICS.md). Primary endpoints: log FID and the "
        "interpolation set's marginal AUROC; the others are secondary. Test: exact two-sided Mann-Whitney, "
        f"Holm-adjusted within the family of the arm's question (primary and secondary apart), verdict at {ALPHA:.0%}. "
        "Shift: the Hodges-Lehmann estimate with its 95% bootstrap interval, FID as a ratio (x0.9 = 10% lower "
        "FID); P(better): the probability that a seed of the arm beats a seed of the baseline. Welch: Welch's "
        "t-test on log FID (on AUROC), beside the verdict. MDE: the shift this test detects with 80% power at the "
        f"alpha of Holm's first step. Seeds: per arm, to detect {_effect_text(effect)}."
    )
    lines += [
        "",
        "| profile | arm | endpoint | family | n / base | arm median | shift [95% CI] | P(better) [95% CI] | p | "
        "p (Holm) | Welch p | verdict | MDE | seeds |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    by_arm = {(g.experiment, g.profile): g for g in groups}
    for c in sorted(comparisons, key=lambda c: not c.primary):
        if c.verdict == SATURATED or not c.n:  # saturated: in the note below; n = 0: the arm lacks the metric
            continue
        median = level(np.asarray(by_arm[(c.experiment, c.profile)].stat(c.key).values, dtype=float)).median
        shift = c.shift
        better = "-" if shift is None else f"{shift.p_better:.2f} {interval(shift.p_better_ci, fixed)}".rstrip()
        verdict = f"**{c.verdict}**" if c.verdict in ("better", "worse") else c.verdict
        seeds = "> 50" if shift is not None and c.seeds_needed is None else str(c.seeds_needed or "-")
        role = "primary" if c.primary else "secondary"
        lines.append(
            f"| {c.profile} | `{c.experiment}` | {c.key.column} | {c.family}, {role} | {c.n} / {c.n_baseline} | "
            f"{number(median, 4)} | {shift_text(c)} | {better} | {p_value(c.p)} | {p_value(c.p_holm)} | "
            f"{p_value(None if shift is None else shift.p_welch)} | {verdict} | {mde_text(c)} | {seeds} |"
        )
    saturated = sorted({f"{c.key.column} ({c.profile})" for c in comparisons if c.verdict == SATURATED})
    if saturated:
        lines += [
            "",
            f"Saturated (every run of the arm and the baseline at one value; no test): {', '.join(saturated)}.",
        ]
    return [*lines, ""]


def _effect_text(effect: Effect) -> str:
    fid = f"a {effect.fid:.0%} change of FID" if effect.fid_relative else f"{effect.fid:g} FID at the baseline's median"
    return f"{fid} or {effect.auroc:g} AUROC (`summarize --effect`)"


def _grid(found: list[Trend]) -> list[str]:
    """The interaction of each arm with the grid's axis (runner.report.grid)."""
    if not found:
        return []
    lines = [
        "## Along the grid",
        "",
        "Each arm's difference to the baseline at each value of the axis, and the interaction: the change of that "
        "difference per unit of x (x = log10 of the axis where its values span a factor of 10), by least squares "
        "of the metric on arm, x and arm x x, with its 95% interval from HC3 (heteroscedasticity-consistent) "
        "standard errors; p Holm-adjusted over the profile's trends.",
        "",
        "| profile | arm | metric | axis values | arm - baseline | interaction [95% CI] | p (Holm) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for t in found:
        x = f"per decade of {t.axis}" if t.scale == "log10" else f"per unit of {t.axis}"
        values = ", ".join(f"{v:g}" for v in t.values)
        diffs = ", ".join(signed(d) for d in t.differences)
        lines.append(
            f"| {t.profile} | `{t.experiment}` | {t.key.column} | {values} | {diffs} | {signed(t.slope)} "
            f"[{signed(t.ci95[0])}, {signed(t.ci95[1])}] {x} | {_p(t.p)} ({_p(t.p_holm)}) |"
        )
    return [*lines, ""]


def _figures(files: dict[str, Path], report: Path) -> list[str]:
    lines = ["## Figures", ""]
    if "plot" in files:
        lines += [f"![levels and differences to the baseline]({_link(files['plot'], report)})", ""]
    if "grid_plot" in files:
        lines += [f"![each arm along the grid's axis]({_link(files['grid_plot'], report)})", ""]
    if "samples" in files:
        lines += [f"![every run's samples]({_link(files['samples'], report)})", ""]
    return lines


def _collapsed(results: list[RunResult]) -> list[str]:
    lines = ["## Collapsed runs", ""]
    collapsed = [r for r in results if r.collapsed]
    if not collapsed:
        return [
            *lines,
            "None (a run collapsed when its FID stayed above half of fid_init, the noise it starts from).",
            "",
        ]
    lines += ["Kept in every estimate above (a collapse is a result, never dropped):", ""]
    lines += [f"- `{r.run_id}`: FID {_g(r.fid)} against fid_init {_g(r.fid_init)}" for r in collapsed]
    return [*lines, ""]


def _failures(groups: list[Group]) -> list[str]:
    """Per arm: its failed runs, the rate with its exact (Clopper-Pearson) 95% interval, Fisher's p against the
    baseline of its profile (a secondary endpoint: reported, not a verdict)."""
    lines = ["## Failed runs", ""]
    lines += [
        "A run failed when its samples are not digits (judged on its samples.png by the digits network; where "
        "they could not be judged, when it collapsed). Per arm, the rate with its exact 95% interval, and Fisher's "
        "exact p against the baseline's failures (secondary):",
        "",
        "| arm | profile | failed / judged | rate [95% CI] | Fisher p vs baseline | failed seeds |",
        "|---|---|---|---|---|---|",
    ]
    bases = {g.profile: g for g in groups if g.experiment == BASELINE}
    for g in groups:
        cells = failure_cells(g, bases.get(g.profile))
        if not cells["judged_n"]:
            continue
        bounds = interval((cells["failure_rate_lo"], cells["failure_rate_hi"]), write=lambda v: fixed(v, 2))
        rate = f"{fixed(cells['failure_rate'], 2)} {bounds}"
        seeds = " ".join(f"s{seed}" for seed in g.failed_seeds()) or "none"
        fisher = _p(cells.get("failure_fisher_p")) if "failure_fisher_p" in cells else ""
        counts = f"{cells['failed_n']} / {cells['judged_n']}"
        lines.append(f"| `{g.experiment}` | {g.profile} | {counts} | {rate} | {fisher} | {seeds} |")
    return [*lines, ""]


def _weak_seeds(groups: list[Group]) -> list[str]:
    lines = ["## Weak seeds", ""]
    found = [(g, r, ratio) for g in groups for r, ratio in g.weak_seeds()]
    rule = f"FID is above {WEAK_SEED_FACTOR:g} x its arm's median (arms with {WEAK_SEED_MIN_RUNS}+ seeds)"
    if not found:
        return [*lines, f"No seed is weak. A seed is weak when its {rule}.", ""]
    lines += [f"A seed is weak when its {rule}; kept in every estimate above:", ""]
    for g, r, ratio in found:
        tag = " (collapsed)" if r.collapsed else ""
        arm = f"`{g.experiment}` ({g.profile})"
        lines.append(f"- `{r.run_id}`: FID {_g(r.fid)}, {ratio:.2f} x the median of {arm}{tag}")
    counted = [r for g in groups if g.stat(FID).n >= WEAK_SEED_MIN_RUNS for r in g.runs if r.fid is not None]
    lines += ["", f"{len(found)} of the {len(counted)} runs of those arms are weak."]
    return [*lines, ""]


def _progress(scan: StoreScan, missing: list[str] | None, points: dict[str, dict[str, Any]]) -> list[str]:
    lines = ["## Running and missing runs", ""]
    if scan.running:
        lines += [f"- running: `{run_id}` ({state})" for run_id, state in scan.running.items()]
    if missing:
        lines += ["- missing (asked by a sweep, no run directory yet):", ""]
        lines += ["```", *missing_grid(missing, points), "```"]
    if not scan.running and not missing:
        lines.append("None running; nothing the sweeps asked for is missing.")
    return [*lines, ""]


def _command(r: RunResult, store_uri: str) -> str:
    """The `local` command that reproduces the run (its point as --set flags, as RunSpec writes them)."""
    spec = RunSpec.of(r.experiment, r.profile, r.seed, r.point, r.smoke)
    return shlex.join(["python", "-m", "runner", "local", *spec.to_argv(), "--store", store_uri])


def _provenance(results: list[RunResult], store_uri: str) -> list[str]:
    gpu = sum(r.wall_s for r in results if r.device.startswith("cuda")) / 3600
    cpu = sum(r.wall_s for r in results if not r.device.startswith("cuda")) / 3600
    lines = ["## Provenance", ""]
    lines.append(f"- torch: {', '.join(sorted({r.torch for r in results}))}")
    lines += [f"- device: {device}" for device in sorted({r.device for r in results})]
    lines.append(f"- compute: {gpu:.2f} GPU hours, {cpu:.2f} CPU hours (the runs' wall_s: training and evaluation)")
    lines.append(f"- FID: {'; '.join(sorted({r.fid_protocol for r in results}))}")
    lines += ["", "| run | config hash | iterations | device | reproduce |", "| --- | --- | --- | --- | --- |"]
    for r in results:
        device = r.device.split(" (")[0]
        lines.append(f"| `{r.run_id}` | `{r.config_hash}` | {r.iterations} | {device} | `{_command(r, store_uri)}` |")
    return [*lines, ""]


def report_text(
    store_uri: str,
    scan: StoreScan,
    groups: list[Group],
    comparisons: list[Comparison],
    missing: list[str] | None,
    files: dict[str, Path],
    report: Path,
    experiments: ExperimentsFile | None,
    effect: Effect,
    trends: list[Trend] | None = None,
    points: dict[str, dict[str, Any]] | None = None,
) -> str:
    """The whole report.md."""
    results = [r for g in groups for r in g.runs]
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    head = [
        f"# CLEL ablation: {store_uri}",
        "",
        f"Written by `python -m runner summarize --store {store_uri}` on {stamp}, from {len(results)} finished runs.",
        "",
    ]
    body = _question(groups, experiments) + encoder_section(groups) + _verdicts(groups, comparisons, effect)
    body += _grid(trends or [])
    body += _figures(files, report)
    tail = _failures(groups) + _collapsed(results) + _weak_seeds(groups) + _progress(scan, missing, points or {})
    tail += _provenance(results, store_uri)
    return "\n".join(head + body + tail)
