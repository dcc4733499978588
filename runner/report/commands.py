"""`python -m runner summarize`: the report subcommand (runner.cli.Commands inherits ReportCommands)."""

from runner.config import DEFAULT_CONFIG_FILE


class ReportCommands:
    """The summarize subcommand."""

    def summarize(self, store: str = "runs", out: str = "summary.csv", config: str = DEFAULT_CONFIG_FILE) -> None:
        """Aggregate a store's results over seeds: CSVs, plots, TensorBoard HParams; list running and missing runs.

        Writes --out (one row per experiment x profile), <stem>_runs.csv (one row per run), <stem>.png and
        samples_grid.png beside it, and <store>/tensorboard/ for `tensorboard --logdir <store>`. Missing runs are
        the sweep of --config ([sweep] seeds x experiments x the profiles seen) without a run directory.
        """
        from runner.report.summary import summarize  # numpy, scipy and matplotlib only when summarizing

        summarize(str(store), str(out), str(config))
