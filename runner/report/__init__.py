"""Aggregate a store of finished runs into the ablation table: CSVs over seeds, plots, TensorBoard HParams.

Reads every <run_id>/result.json of a store (local directory or s3://), groups runs by experiment x profile,
and writes <out> (one row per group), <stem>_runs.csv (one row per run), <stem>.png, samples_grid.png and
<store>/tensorboard/ (one HParams session per run). A difference from `baseline` comes with a 95% Welch t
interval. README.md ("Summarizing an ablation") documents every column.

Modules: scan (reading a store), stats (over seeds), table (CSVs and the printed table), plots, hparams,
sweep (missing runs), files (output paths and writing), summary (the summarize function), commands (the CLI
subcommand). The names below load their module on first use: the CLI imports runner.report.commands at
start-up, and that must not pull in numpy, scipy or matplotlib.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runner.report.hparams import TENSORBOARD_DIR
    from runner.report.scan import read_result
    from runner.report.stats import FID, MetricKey, welch_interval
    from runner.report.summary import SummaryReport, summarize
    from runner.report.table import run_columns, summary_columns

_HOME = {
    "summarize": "summary",
    "SummaryReport": "summary",
    "read_result": "scan",
    "FID": "stats",
    "MetricKey": "stats",
    "welch_interval": "stats",
    "summary_columns": "table",
    "run_columns": "table",
    "TENSORBOARD_DIR": "hparams",
}
__all__ = [
    "FID",
    "TENSORBOARD_DIR",
    "MetricKey",
    "SummaryReport",
    "read_result",
    "run_columns",
    "summarize",
    "summary_columns",
    "welch_interval",
]


def __getattr__(name: str) -> Any:
    """A public name, imported from its module when first asked for."""
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_HOME[name]}"), name)
    globals()[name] = value
    return value
