"""The local files summarize writes: where they go, and writing one completely or not at all."""

from pathlib import Path

from runner.atomic_file import write_atomic
from runner.errors import UserError
from runner.layout import FID_BY_SEED_FILE, SAMPLES_GRID_FILE, SAMPLES_ROWS_FILE


def output_paths(out: str) -> dict[str, Path]:
    """summary: <out>; runs: <stem>_runs.csv; plot: <stem>.png; grid: <stem>_grid.csv and <stem>_grid.png (when
    the runs form a grid); samples: samples_grid.png; fid_seeds: fid_by_seed.png; sample_rows: samples_rows.png
    (a typical and the worst seed per arm), all beside <out>."""
    if "://" in out:
        raise UserError(f"--out {out}: expected a local file path")
    path = Path(out).expanduser()
    if path.suffix.lower() != ".csv":
        raise UserError(f"--out {out}: expected a file name ending in .csv")
    return {
        "summary": path,
        "runs": path.with_name(f"{path.stem}_runs.csv"),
        "plot": path.with_suffix(".png"),
        "grid": path.with_name(f"{path.stem}_grid.csv"),
        "grid_plot": path.with_name(f"{path.stem}_grid.png"),
        "samples": path.with_name(SAMPLES_GRID_FILE),
        "fid_seeds": path.with_name(FID_BY_SEED_FILE),
        "sample_rows": path.with_name(SAMPLES_ROWS_FILE),
    }


def write_output(path: Path, data: bytes) -> None:
    """Write one output file atomically; UserError (one line) if the location is not writable."""
    try:
        write_atomic(path, data)
    except OSError as err:
        raise UserError(f"cannot write {path}: {err.strerror or err}") from None


def check_outputs(files: dict[str, Path]) -> None:
    """UserError before anything is written if an output cannot be a file: its name is a directory, or its
    folder is a file."""
    for path in files.values():
        if path.is_dir():
            raise UserError(f"cannot write {path}: it is a directory")
        parent = next((p for p in path.parents if p.exists()), None)
        if parent is not None and not parent.is_dir():
            raise UserError(f"cannot write {path}: {parent} is not a directory")
