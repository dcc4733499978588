"""`python -m runner summarize`: the report subcommand (runner.cli.commands.Commands inherits ReportCommands)."""

from runner.config import DEFAULT_CONFIG_FILE

DEFAULT_EFFECT = "fid=10%,auroc=0.02"  # runner.report.verdicts.DEFAULT_EFFECT (that module imports scipy)


class ReportCommands:
    """The summarize subcommand."""

    def summarize(
        self,
        store: str = "runs",
        out: str | None = None,
        report: str | None = None,
        effect: str = DEFAULT_EFFECT,
        config: str = DEFAULT_CONFIG_FILE,
    ) -> None:
        """Aggregate a store's results over seeds: verdicts, CSVs, the figure, report.md, TensorBoard HParams.

        Writes summary.csv (one row per experiment x profile, with each arm's verdict against the baseline),
        summary_runs.csv (one row per run), summary.png (levels and a forest plot of the differences),
        samples_grid.png and report.md into the store (uploaded, for S3), and <store>/tensorboard/ for
        `tensorboard --logdir <store>`. Missing runs are those the store's sweeps asked for (its sweep.json)
        without a run directory.

        Flags:
          out: a local summary.csv to write instead (its siblings beside it; an S3 store still gets its copies)
          report: a local Markdown report to write instead of the store's report.md
          effect: the difference seeds_needed is computed for: fid=X (FID units) or fid=X% (of the baseline's
            mean), auroc=Y (default: fid=10%,auroc=0.02)
        """
        from runner.report.summary import summarize  # numpy, scipy and matplotlib only when summarizing

        summarize(
            str(store),
            None if out is None else str(out),
            str(config),
            effect=str(effect),
            report=None if report is None else str(report),
        )
