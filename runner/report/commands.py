"""`python -m runner summarize`: the report subcommand (runner.cli.Commands inherits ReportCommands)."""

from runner.config import DEFAULT_CONFIG_FILE


class ReportCommands:
    """The summarize subcommand."""

    def summarize(self, store: str = "runs", out: str | None = None, config: str = DEFAULT_CONFIG_FILE) -> None:
        """Aggregate a store's results over seeds: CSVs, plots, TensorBoard HParams; list running and missing runs.

        Writes summary.csv (one row per experiment x profile), summary_runs.csv (one row per run), summary.png and
        samples_grid.png into the store (uploaded, for S3), and <store>/tensorboard/ for `tensorboard --logdir
        <store>`. Missing runs are those the store's sweeps asked for (its sweep.json) without a run directory.

        Flags:
          out: a local summary.csv to write instead (its siblings beside it; an S3 store still gets its copies)
        """
        from runner.report.summary import summarize  # numpy, scipy and matplotlib only when summarizing

        summarize(str(store), None if out is None else str(out), str(config))
