"""Partial sweeps: which runs of experiments.toml's sweep have no run directory in the store yet."""

import re
from pathlib import Path

from runner.config import DEFAULT_CONFIG_FILE, ExperimentsFile
from runner.report.scan import StoreScan

RUN_ID = re.compile(r"^(?P<experiment>.+)-(?P<profile>[^-]+)-s(?P<seed>\d+)$")


def load_config(config: str) -> ExperimentsFile | None:
    """The experiments file, or None when it is the default and absent (then no missing runs are listed)."""
    if not config or (config == DEFAULT_CONFIG_FILE and not Path(config).exists()):
        return None
    return ExperimentsFile(config)


def missing_runs(experiments: ExperimentsFile, scan: StoreScan) -> list[str]:
    """The sweep (experiments x profiles seen in the store x [sweep] seeds) minus the run directories present."""
    present = scan.present()
    parsed = [m["profile"] for run_id in present if (m := RUN_ID.match(run_id))]
    profiles = {r.profile for r in scan.results} | {p for p in parsed if p in experiments.profiles}
    expected = [
        f"{exp}-{profile}-s{seed}"
        for profile in sorted(profiles)
        for exp in experiments.experiments
        for seed in experiments.seeds()
    ]
    return [run_id for run_id in expected if run_id not in present]
