"""Partial sweeps: the runs that sweeps asked a store for (its sweep.json) and which of them are not there yet.

`sweep` records the run ids it was asked for in <store>/sweep.json (the union over every sweep into the store),
and the settings of each grid point by its tag (`g<8 hex>`, runner.layout); summarize lists the asked runs without
a run directory, grouped as experiment x profile (x point) -> seeds, a point shown by its settings
(`tiny @ energy.beta=0.1`). A store no sweep ran into (runs made by `local` only) has no record and no missing
runs. The record is data: a run id is taken only when it is one, a point only when its tag is its own hash.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.config import DEFAULT_CONFIG_FILE, ExperimentsFile
from runner.layout import SMOKE, SWEEP_FILE, is_smoke, parse_run_id, point_label, point_tag
from runner.report.scan import StoreScan
from runner.store import Store


def load_config(config: str) -> ExperimentsFile | None:
    """The experiments file, or None when it is the default and absent."""
    if not config or (config == DEFAULT_CONFIG_FILE and not Path(config).exists()):
        return None
    return ExperimentsFile(config)


@dataclass(frozen=True)
class SweepRecord:
    """What sweep.json says, read once: the asked run ids (None when no sweep recorded any, or the record is
    unreadable) and the grid points by tag. It is data: only well-formed run ids are taken, and a point only
    under its own hash."""

    asked: list[str] | None
    points: dict[str, dict[str, Any]]


def read_sweep_record(store: Store) -> SweepRecord:
    try:
        record = json.loads(store.read(SWEEP_FILE))
    except (KeyError, ValueError, UnicodeDecodeError):
        record = {}
    record = record if isinstance(record, dict) else {}
    asked, points = record.get("asked"), record.get("points")
    return SweepRecord(
        sorted({run_id for run_id in asked if isinstance(run_id, str) and parse_run_id(run_id)})
        if isinstance(asked, list)
        else None,
        {tag: point for tag, point in points.items() if isinstance(point, dict) and point_tag(point) == tag}
        if isinstance(points, dict)
        else {},
    )


def asked_runs(store: Store) -> list[str] | None:
    """The run ids sweeps asked this store for, or None when no sweep recorded any."""
    return read_sweep_record(store).asked


def asked_points(store: Store) -> dict[str, dict[str, Any]]:
    """The recorded grid points by tag; an entry whose tag is not the hash of its settings is ignored."""
    return read_sweep_record(store).points


def record_sweep(store: Store, run_ids: Iterable[str], points: Iterable[dict[str, Any]] = ()) -> None:
    """Add a sweep's run ids and its points' settings to the store's sweep.json (nothing recorded before is
    dropped)."""
    before = read_sweep_record(store)
    asked = set(before.asked or []) | set(run_ids)
    known = before.points | {point_tag(point): point for point in points if point}
    record = {"asked": sorted(asked), "points": dict(sorted(known.items()))}
    store.write(SWEEP_FILE, (json.dumps(record, indent=1) + "\n").encode())


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
