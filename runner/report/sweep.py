"""Partial sweeps: the runs that sweeps asked a store for (its sweep.json) and which of them are not there yet.

`sweep` records the run ids it was asked for in <store>/sweep.json (the union over every sweep into the store);
summarize lists the asked runs without a run directory, grouped as experiment -> seeds. A store no sweep ran
into (runs made by `local` only) has no record and no missing runs.
"""

import json
from collections.abc import Iterable
from pathlib import Path

from runner.config import DEFAULT_CONFIG_FILE, ExperimentsFile
from runner.layout import SWEEP_FILE, parse_run_id
from runner.report.scan import StoreScan
from runner.store import Store


def load_config(config: str) -> ExperimentsFile | None:
    """The experiments file, or None when it is the default and absent."""
    if not config or (config == DEFAULT_CONFIG_FILE and not Path(config).exists()):
        return None
    return ExperimentsFile(config)


def asked_runs(store: Store) -> list[str] | None:
    """The run ids sweeps asked this store for, or None when no sweep recorded any (or the record is unreadable:
    it is data, and only well-formed run ids are taken from it)."""
    try:
        record = json.loads(store.read(SWEEP_FILE))
    except (KeyError, ValueError, UnicodeDecodeError):
        return None
    asked = record.get("asked") if isinstance(record, dict) else None
    if not isinstance(asked, list):
        return None
    return sorted({run_id for run_id in asked if isinstance(run_id, str) and parse_run_id(run_id)})


def record_sweep(store: Store, run_ids: Iterable[str]) -> None:
    """Add a sweep's run ids to the store's sweep.json (nothing recorded before is dropped)."""
    asked = set(asked_runs(store) or []) | set(run_ids)
    store.write(SWEEP_FILE, (json.dumps({"asked": sorted(asked)}, indent=1) + "\n").encode())


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


def missing_grid(run_ids: list[str]) -> list[str]:
    """Missing run ids as one line per experiment x profile (x variant): `experiment  profile  seeds 0-2 4`."""
    rows: dict[tuple[str, str], list[int]] = {}
    for run_id in run_ids:
        experiment, profile, variant, seed = parse_run_id(run_id)  # type: ignore[misc]
        rows.setdefault((experiment, f"{profile}-{variant}" if variant else profile), []).append(seed)
    width = max((len(experiment) for experiment, _ in rows), default=0) + 2
    profile_width = max((len(profile) for _, profile in rows), default=0) + 2
    return [f"  {exp:<{width}}{p:<{profile_width}}seeds {seed_ranges(seeds)}" for (exp, p), seeds in rows.items()]
