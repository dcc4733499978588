"""summary_runs.csv read back into RunResults, so that a summary's figures can be drawn again with the current
figure code when the store its runs came from is gone (docs/grid/ and docs/previous/: scripts/redraw_figures.py).

What the CSV does not keep comes back empty: each run's point is recovered from its run id's tag by trying the
axis values given (a tag is a hash of the point, runner.layout.point_tag), and a run without an encoder block
in the CSV has none. The CSV is data: every cell is parsed and validated as a result.json's would be.
"""

import csv
import re
from pathlib import Path
from typing import Any

from runner import layout
from runner.report.encoders import ENCODER_RUN_COLUMNS
from runner.result import RunResult

_AUROC_COLUMN = re.compile(r"auroc_(?P<ood_set>.+)_(?P<score>marginal|joint)")
_POINT_TAG = re.compile(r"-(g[0-9a-f]{8})-s\d+$")
_ENCODER_FIELDS = tuple(name for name in ENCODER_RUN_COLUMNS if name != "encoder_collapsed")


def _value(cell: str) -> Any:
    """A CSV cell as summary_runs.csv wrote it: empty is None, true/false are booleans, numbers are floats."""
    if cell == "":
        return None
    if cell in ("true", "false"):
        return cell == "true"
    try:
        return float(cell)
    except ValueError:
        return cell


def _candidates(axis: str, values: list[float]) -> dict[str, dict[str, Any]]:
    """tag -> point for each value of the axis, written as an int where it is one (`1` and `1.0` hash apart)."""
    points = {}
    for value in values:
        for written in (float(value), int(value)) if float(value).is_integer() else (value,):
            points[layout.point_tag({axis: written})] = {axis: written}
    return points


def point_of(run_id: str, axis: str | None, values: list[float]) -> dict[str, Any]:
    """The run's point from its run id's tag ({} for a run without one); ValueError when no value matches."""
    match = _POINT_TAG.search(run_id)
    if match is None:
        return {}
    points = _candidates(axis, values) if axis else {}
    if match.group(1) not in points:
        raise ValueError(f"{run_id}: its point tag {match.group(1)} is none of {axis} = {values}")
    return points[match.group(1)]


def run_from_row(row: dict[str, str], axis: str | None = None, values: list[float] | None = None) -> RunResult:
    """One summary_runs.csv row as a RunResult; ValueError with a one-line reason when the row is not one."""
    cells = {name: _value(cell) for name, cell in row.items()}
    auroc: dict[str, dict[str, Any]] = {}
    for name, value in cells.items():
        if (match := _AUROC_COLUMN.fullmatch(name)) is not None:
            auroc.setdefault(match["ood_set"], {"marginal": None, "joint": None})[match["score"]] = value
    encoder = None
    if cells.get("mean_cos_z") is not None:
        encoder = {name: cells.get(name) for name in _ENCODER_FIELDS} | {"collapsed": cells.get("encoder_collapsed")}
    notes = [note for note in row.get("notes", "").split("; ") if note and not note.startswith("missing: ")]
    seed = int(row["seed"])
    raw = {
        "experiment": row["experiment"],
        "profile": row["profile"],
        "seed": seed,
        "point": point_of(row["run_id"], axis, values or []),
        "run_id": row["run_id"],
        "config_hash": row["config_hash"],
        "iterations": int(row["iterations"]),
        "wall_s": float(row["wall_h"]) * 3600,
        "device": row["device"],
        "torch": row["torch"],
        "crl": row["crl"],
        "norm_direction_split": cells["norm_direction_split"],
        "use_generated_negatives": cells["use_generated_negatives"],
        "fid": cells["fid"],
        "fid_features": row["fid_features"],
        "fid_init": cells["fid_init"],
        "fid_protocol": row["fid_protocol"],
        "collapsed": cells["collapsed"],
        "auroc": auroc,
        "encoder": encoder,
        "notes": notes,
    }
    try:
        return RunResult.model_validate(raw)
    except ValueError as err:
        raise ValueError(f"{row['run_id']}: not a run ({str(err).splitlines()[0]})") from None


def read_runs(path: Path, axis: str | None = None, values: list[float] | None = None) -> list[RunResult]:
    """Every run of a summary_runs.csv (see run_from_row)."""
    with path.open(newline="") as handle:
        return [run_from_row(row, axis, values) for row in csv.DictReader(handle)]
