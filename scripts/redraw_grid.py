"""Draw a grid summary's figure again from its CSVs, with the current figure code, when its runs' store is gone.

python scripts/redraw_grid.py                    # docs/grid/summary_grid.png from docs/grid/*.csv
python scripts/redraw_grid.py --summary DIR      # DIR/summary_grid.png from DIR/summary_runs.csv, summary_grid.csv

The runs come from summary_runs.csv (runner.report.runs_csv), the axis and its values from summary_grid.csv; a
run without a point sits at its experiment's own value of the axis in experiments.toml. Nothing else is read.
"""

import argparse
import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runner.config import ExperimentsFile  # noqa: E402
from runner.report.files import output_paths  # noqa: E402
from runner.report.grid import find_grids, plot_grids  # noqa: E402
from runner.report.runs_csv import read_runs  # noqa: E402
from runner.report.stats import metric_keys  # noqa: E402


def axis_and_values(path: Path) -> tuple[str, list[float]]:
    """summary_grid.csv's one axis and every value it lists."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    axes = {row["axis"] for row in rows}
    if len(axes) != 1:
        raise SystemExit(f"{path}: expected one grid axis, found {sorted(axes) or 'none'}")
    values = sorted({float(value) for row in rows for value in row["values"].split()})
    return axes.pop(), values


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--summary", type=Path, default=ROOT / "docs" / "grid", help="the summary's folder")
    args = parser.parse_args()
    files = output_paths(str(args.summary / "summary.csv"))
    axis, values = axis_and_values(files["grid"])
    runs = read_runs(files["runs"], axis, values)
    grids = find_grids(runs, ExperimentsFile(ROOT / "experiments.toml"))
    if not plot_grids(grids, metric_keys(runs), files["grid_plot"]):
        raise SystemExit(f"{args.summary}: its runs form no grid along {axis}")
    print(f"{files['grid_plot']}: {len(runs)} runs along {axis} = {values}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
