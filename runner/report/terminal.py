"""What summarize prints: the arms' levels, their failures and encoders, and the verdicts."""

import math

import numpy as np

from runner.metrics.sample_quality import FAILURE_RULE
from runner.report.encoders import encoder_summary
from runner.report.estimates import level
from runner.report.numbers import fixed, interval, number, p_value
from runner.report.stats import FID, SCORES, Group, MetricKey
from runner.report.verdicts import SATURATED, Comparison
from runner.result import ENCODER_COLLAPSE_RULE
from runner.text import aligned


def _fid_cell(group: Group) -> str:
    found = level(np.asarray(group.stat(FID).values, dtype=float))
    if found.median is None:
        return "-"
    text = f"{number(found.median, 4)} {interval(found.median_ci, lambda v: number(v, 4))}".rstrip()
    return text if found.n == len(group.runs) else f"{text} [n={found.n}]"


def _failed_cell(group: Group) -> str:
    judged = [r for r in group.runs if group.failed(r) is not None]
    return f"{len(group.failed_seeds())}/{len(judged)}" if judged else "-"


def _encoder_cell(group: Group) -> str:
    """`0.950 (0.930-0.960)` median and range of the probe on z, `; 2 collapsed`; '-' without an encoder."""
    cells = encoder_summary(group)
    if not cells or cells["probe_z_median"] is None:
        return "-"
    text = f"{fixed(cells['probe_z_median'])} ({fixed(cells['probe_z_min'])}-{fixed(cells['probe_z_max'])})"
    return text + (f"; {cells['encoder_collapsed_n']} collapsed" if cells["encoder_collapsed_n"] else "")


def format_table(groups: list[Group], metrics: list[MetricKey]) -> str:
    """An aligned table: per arm its seeds, median FID with its bootstrap interval, failed runs, the encoder's
    probe on z, and median AUROC marginal/joint per OOD set."""
    sets = sorted({key.ood_set for key in metrics if key.ood_set})
    header = ["experiment", "profile", "n", "fid median [95% CI]", "failed", "probe z", *(f"{s} m/j" for s in sets)]
    rows = [header]
    for g in groups:
        aurocs = [
            "/".join(fixed(level(np.asarray(g.stat(MetricKey(name, score)).values)).median) for score in SCORES)
            if g.has(MetricKey(name))
            else ""
            for name in sets
        ]
        rows.append([g.experiment, g.profile, str(len(g.runs)), _fid_cell(g), _failed_cell(g), _encoder_cell(g)])
        rows[-1] += aurocs
    legend = (
        "fid: median over seeds with its 95% bootstrap interval ([n=k]: only k seeds have it); failed: runs whose "
        f"samples are not digits ({FAILURE_RULE}; unjudged runs: fid > 0.5 x fid_init); probe z: the encoder's "
        f"linear-probe accuracy on z, median (range), collapsed encoders ({ENCODER_COLLAPSE_RULE}); <set> m/j: "
        "median AUROC marginal/joint"
    )
    return "\n".join([*aligned(rows), legend])


def shift_text(c: Comparison) -> str:
    """`x0.87 [0.80, 0.95]` for FID (a ratio of FIDs), `+0.012 [-0.004, 0.030]` for AUROC."""
    if c.shift is None:
        return "-"
    if c.key == FID:
        ratio = lambda v: f"{math.exp(v):.3g}"  # noqa: E731
        return f"x{ratio(c.shift.shift)} {interval(c.shift.shift_ci, ratio)}".rstrip()
    signed = lambda v: f"{v:+.3f}"  # noqa: E731
    return f"{signed(c.shift.shift)} {interval(c.shift.shift_ci, signed)}".rstrip()


def mde_text(c: Comparison) -> str:
    if c.mde is None:
        return "-"
    return f"x{math.exp(c.mde):.3g}" if c.key == FID else f"{c.mde:.3f}"


def format_verdicts(comparisons: list[Comparison]) -> str:
    """One line per arm x endpoint tested against its baseline (primary endpoints first); saturated ones in a note."""
    tested = sorted((c for c in comparisons if c.verdict != SATURATED and c.n), key=lambda c: not c.primary)
    if not tested:
        return ""
    header = ["profile", "arm", "endpoint", "family", "n/base", "shift [95% CI]", "P(better)", "p", "p_holm"]
    rows = [header + ["verdict", "mde", "seeds"]]
    for c in tested:
        better = "-" if c.shift is None else f"{c.shift.p_better:.2f}"
        family = f"{c.family} ({'primary' if c.primary else 'secondary'})"
        rows.append(
            [c.profile, c.experiment, c.key.column, family, f"{c.n}/{c.n_baseline}", shift_text(c), better]
            + [p_value(c.p), p_value(c.p_holm), c.verdict, mde_text(c)]
            + ["> 50" if c.shift is not None and c.seeds_needed is None else str(c.seeds_needed or "-")]
        )
    saturated = sorted({f"{c.key.column} ({c.profile})" for c in comparisons if c.verdict == SATURATED})
    legend = [
        "verdicts (docs/STATISTICS.md): exact two-sided Mann-Whitney test against the profile's baseline, Holm within "
        "each family (a question's arms, primary and secondary endpoints apart), at 5%; shift: Hodges-Lehmann, FID "
        "as a ratio (x0.9 = 10% lower), with its 95% bootstrap interval; P(better): the probability that a seed of "
        "the arm beats a seed of the baseline; mde: the shift this test detects with 80% power at Holm's first-step "
        "alpha; seeds: per arm, to detect the --effect size (> 50: more than 50)",
    ]
    if saturated:
        legend.append(f"saturated (every run at one value, not tested): {', '.join(saturated)}")
    return "\n".join([*aligned(rows), *legend])
