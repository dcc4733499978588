"""Draw a summary's figures again from its CSVs, with today's figure code, when its runs' store is gone.

python scripts/redraw_figures.py docs/grid docs/previous   # each folder's summary.png and fid_by_seed.png, and
                                                           # summary_grid.png where it has a summary_grid.csv

The runs come from the folder's summary_runs.csv (runner.report.runs_csv); a grid's axis and values from its
summary_grid.csv, a run without a point sitting at its experiment's own value of the axis in experiments.toml.
The comparisons drawn are today's statistics (docs/STATISTICS.md) on those runs, as summarize would draw them;
what the samples looked like is not in the CSVs, so samples_grid.png is left as it is. Nothing else is read.
"""

import argparse
import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runner.config import ExperimentsFile  # noqa: E402
from runner.report.figures import plot_fid_by_seed, plot_summary  # noqa: E402
from runner.report.files import output_paths  # noqa: E402
from runner.report.grid import find_grids, plot_grids  # noqa: E402
from runner.report.runs_csv import read_runs  # noqa: E402
from runner.report.stats import group_runs, metric_keys  # noqa: E402
from runner.report.verdicts import compare_groups, parse_effect  # noqa: E402


def axis_and_values(path: Path) -> tuple[str | None, list[float]]:
    """summary_grid.csv's one axis and every value it lists; (None, []) without the file."""
    if not path.exists():
        return None, []
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    axes = {row["axis"] for row in rows}
    if len(axes) != 1:
        raise SystemExit(f"{path}: expected one grid axis, found {sorted(axes) or 'none'}")
    values = sorted({float(value) for row in rows for value in row["values"].split()})
    return axes.pop(), values


def redraw(folder: Path, experiments: ExperimentsFile) -> list[Path]:
    """The figures of one summary folder, drawn again; the paths written."""
    files = output_paths(str(folder / "summary.csv"))
    axis, values = axis_and_values(files["grid"])
    runs = read_runs(files["runs"], axis, values)
    metrics = metric_keys(runs)
    groups = group_runs(runs, list(experiments.experiments))
    comparisons = compare_groups(groups, metrics, parse_effect(""), experiments.questions())
    plot_summary(groups, metrics, comparisons, files["plot"])
    written = [files["plot"]]
    if plot_fid_by_seed(groups, files["fid_seeds"]):
        written.append(files["fid_seeds"])
    if axis is not None and plot_grids(find_grids(runs, experiments), metrics, files["grid_plot"]):
        written.append(files["grid_plot"])
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path, help="summary folders (each with a summary_runs.csv)")
    args = parser.parse_args()
    experiments = ExperimentsFile(ROOT / "experiments.toml")
    for folder in args.folders:
        written = redraw(folder, experiments)
        print(f"{folder}: {', '.join(path.name for path in written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
