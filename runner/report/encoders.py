"""The encoder's health in the summary: its columns in summary.csv (per arm) and summary_runs.csv (per run), from
result.json's encoder block (docs/ENCODERS.md)."""

from typing import Any

import numpy as np

from runner.report.numbers import fixed
from runner.report.stats import Group
from runner.result import ENCODER_COLLAPSE_RULE, RunResult

# the encoder's health per arm (docs/ENCODERS.md): median and range over seeds, and the count of collapsed encoders
ENCODER_SUMMARY_COLUMNS = (
    "encoder_collapsed_n",
    "probe_z_median",
    "probe_z_min",
    "probe_z_max",
    "untrained_probe_z_median",
    "mean_cos_z_median",
    "mean_cos_z_max",
    "final_loss_median",
    "chance_loss",
)
# per run: every field of result.json's encoder block
ENCODER_RUN_COLUMNS = (
    "encoder_collapsed",
    "probe_h",
    "probe_z",
    "mean_cos_z",
    "untrained_probe_h",
    "untrained_probe_z",
    "untrained_mean_cos_z",
    "pixel_probe",
    "final_loss",
    "chance_loss",
)


def encoder_collapsed_seeds(group: Group) -> list[int]:
    """The seeds of the group whose encoder collapsed (runner.result.is_encoder_collapsed)."""
    return [r.seed for r in group.runs if r.encoder is not None and r.encoder.collapsed]


def _encoder_values(group: Group, field: str) -> list[float]:
    values = [getattr(r.encoder, field) for r in group.runs if r.encoder is not None]
    return [float(v) for v in values if v is not None and np.isfinite(v)]


def encoder_summary(group: Group) -> dict[str, Any]:
    """The group's ENCODER_SUMMARY_COLUMNS (empty cells for an arm without an encoder)."""
    if not any(r.encoder is not None for r in group.runs):
        return {}

    def median(field: str) -> float | None:
        values = _encoder_values(group, field)
        return float(np.median(values)) if values else None

    probes, cosines = _encoder_values(group, "probe_z"), _encoder_values(group, "mean_cos_z")
    chances = sorted(set(_encoder_values(group, "chance_loss")))
    return {
        "encoder_collapsed_n": len(encoder_collapsed_seeds(group)),
        "probe_z_median": median("probe_z"),
        "probe_z_min": min(probes) if probes else None,
        "probe_z_max": max(probes) if probes else None,
        "untrained_probe_z_median": median("untrained_probe_z"),
        "mean_cos_z_median": median("mean_cos_z"),
        "mean_cos_z_max": max(cosines) if cosines else None,
        "final_loss_median": median("final_loss"),
        "chance_loss": chances[0] if len(chances) == 1 else None,
    }


def encoder_run_cells(r: RunResult) -> dict[str, Any]:
    """A run's ENCODER_RUN_COLUMNS (empty without an encoder block)."""
    if r.encoder is None:
        return {}
    cells = {name: getattr(r.encoder, name) for name in ENCODER_RUN_COLUMNS if name != "encoder_collapsed"}
    return cells | {"encoder_collapsed": r.encoder.collapsed}


def encoder_section(groups: list[Group]) -> list[str]:
    """report.md's "Did the encoders learn?": per arm with an encoder, the probe on z against the untrained encoder
    and the pixels, the spread of z, the loss against chance, and the collapsed encoders, before any verdict."""
    with_encoder = [g for g in groups if any(r.encoder is not None for r in g.runs)]
    if not with_encoder:
        return []
    lines = [
        "## Did the encoders learn?",
        "",
        "A comparison of encoders means something only where they learned. Per arm (EMA encoder, test split): the "
        "linear-probe accuracy on z (standardised features, logistic regression fit on the training split), median "
        "and range over seeds, beside the untrained encoder of the same method and seeds and the raw pixels; the "
        "mean cosine between two images' z (1: one direction for every image); the method's loss over its last "
        f"steps against its chance level; the encoders that collapsed ({ENCODER_COLLAPSE_RULE}).",
        "",
        "| profile | arm | probe z, median (range) | untrained | pixels | cos z, median (max) | loss / chance | "
        "collapsed |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    collapsed_total = 0
    for g in with_encoder:
        cells = encoder_summary(g)
        pixels = _encoder_values(g, "pixel_probe")
        collapsed = encoder_collapsed_seeds(g)
        collapsed_total += len(collapsed)
        probe = f"{fixed(cells['probe_z_median'])} ({fixed(cells['probe_z_min'])}-{fixed(cells['probe_z_max'])})"
        cosine = f"{fixed(cells['mean_cos_z_median'])} ({fixed(cells['mean_cos_z_max'])})"
        chance = cells["chance_loss"]
        loss = fixed(cells["final_loss_median"], 3) + ("" if chance is None else f" / {fixed(chance)}")
        flagged = f"{len(collapsed)} of {len(g.runs)}" + (
            f" ({' '.join(f's{seed}' for seed in collapsed)})" if collapsed else ""
        )
        lines.append(
            f"| {g.profile} | `{g.experiment}` | {probe} | {fixed(cells['untrained_probe_z_median'])} | "
            f"{fixed(float(np.median(pixels)) if pixels else None)} | {cosine} | {loss} | {flagged} |"
        )
    if collapsed_total:
        lines += [
            "",
            f"**{collapsed_total} encoder(s) collapsed**: a verdict that compares such an arm compares a broken "
            "encoder, not its method.",
        ]
    return [*lines, ""]
