"""The runs that sweeps asked a store for (its sweep.json, runner.plan.sweep_record) and that are not there yet.

summarize lists them grouped as experiment x profile (x point) -> seeds, a point shown by its settings
(`tiny @ energy.beta=0.1`). A store no sweep ran into (runs made by `local` only) has no missing runs.
"""

from collections.abc import Iterable
from typing import Any

from runner.layout import SMOKE, is_smoke, parse_run_id, point_label
from runner.report.scan import StoreScan


def missing_runs(asked: list[str], scan: StoreScan) -> list[str]:
    """The asked runs without a run directory in the store."""
    present = scan.present()
    return [run_id for run_id in asked if run_id not in present]


def seed_ranges(seeds: Iterable[int]) -> str:
    """0 1 2 3 5 -> '0-3 5'."""
    ordered, parts = sorted(set(seeds)), []
    for seed in ordered:
        if parts and seed == parts[-1][1] + 1:
            parts[-1][1] = seed
        else:
            parts.append([seed, seed])
    return " ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in parts)


def _variant_label(profile: str, variant: str, points: dict[str, dict[str, Any]]) -> str:
    """`tiny`, `tiny-smoke`, `tiny @ energy.beta=0.1` (as summarize groups runs), or `tiny-g<tag>` for a point
    the record does not know."""
    smoke = is_smoke(variant)
    tag = variant.removeprefix(SMOKE).lstrip("-")
    label = f"{profile}-{SMOKE}" if smoke else profile
    if not tag:
        return label
    return f"{label} @ {point_label(points[tag])}" if tag in points else f"{label}-{tag}"


def missing_grid(run_ids: list[str], points: dict[str, dict[str, Any]] | None = None) -> list[str]:
    """Missing run ids as one line per experiment x profile (x point): `experiment  profile  seeds 0-2 4`."""
    rows: dict[tuple[str, str], list[int]] = {}
    for run_id in run_ids:
        experiment, profile, variant, seed = parse_run_id(run_id)  # type: ignore[misc]
        rows.setdefault((experiment, _variant_label(profile, variant, points or {})), []).append(seed)
    width = max((len(experiment) for experiment, _ in rows), default=0) + 2
    profile_width = max((len(profile) for _, profile in rows), default=0) + 2
    return [f"  {exp:<{width}}{p:<{profile_width}}seeds {seed_ranges(seeds)}" for (exp, p), seeds in rows.items()]
