"""Aggregate a store of finished runs into the ablation table: CSVs over seeds, plots, TensorBoard HParams.

Reads every <run_id>/result.json of a store (local directory or s3://), groups runs by experiment x profile,
and writes <out> (one row per group), <stem>_runs.csv (one row per run), <stem>.png, samples_grid.png and
<store>/tensorboard/ (one HParams session per run). A difference from `baseline` comes with a 95% Welch t
interval. docs/COLUMNS.md documents every column.

Modules: scan (reading a store), stats (over seeds), table (CSVs and the printed table), plots, hparams,
sweep (missing runs), files (output paths and writing), summary (the summarize function), commands (the CLI
subcommand). Import from the modules themselves: the CLI imports runner.cli.report at start-up, and
that must not pull in numpy, scipy or matplotlib, so this package's own module imports nothing.
"""
