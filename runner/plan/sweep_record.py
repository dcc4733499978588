"""The record of what sweeps asked a store for: <store>/sweep.json, written by the launcher.

`sweep` records the run ids it was asked for in <store>/sweep.json (the union over every sweep into the store),
and the settings of each grid point by its tag (`g<8 hex>`, runner.layout); summarize (runner.report.missing) and
`status --local` read it. A store no sweep ran into (runs made by `local` only) has no record.
The record is data: a run id is taken only when it is one, a point only when its tag is its own hash.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from runner.layout import SWEEP_FILE, parse_run_id, point_tag
from runner.store import Store


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
