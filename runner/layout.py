"""A run's identity and the names of what it writes: the one place the run-id format is spelled.

run id: `<experiment>-<profile>[-<variant>]-s<seed>`, where the variant marks runs that must never mix with the
profile's plain ones: `smoke` (a smoke run) and `g<8 hex>`, the point: the settings (a grid point, `--set`,
`--iterations`) that differ from the experiment's own config, named by a digest of their canonical JSON, so that
two points never share a run directory and 0.1 and 0.10 are one point. Experiment and profile names are
`[a-z][a-z0-9_]*`, so a run id is a safe path part and a Kubernetes label value.
"""

import hashlib
import json
import re
from typing import Any

# the files of a run's directory (<run_id>/...) and of a store's top level
CONFIG_FILE = "config.json"
RESULT_FILE = "result.json"
SAMPLES_FILE = "samples.png"
METRICS_FILE = "metrics.jsonl"
CKPT_DIR = "ckpt"
LATEST = f"{CKPT_DIR}/LATEST"
CKPT_PREFIX = f"{CKPT_DIR}/step-"
LOCK_FILE = ".lock"  # on a local store: held by the process writing the run, with its pid in it
LEASE_FILE = "lease.json"  # on an S3 store: the run's owner and its heartbeat (runner.store.ownership)
EVALS_DIR = "evals"  # earlier evaluations a --reeval replaced: evals/<UTC time>/result.json, samples.png
EVENTS = re.compile(r"events\.out\.tfevents\.[A-Za-z0-9_.-]+")
SWEEP_FILE = "sweep.json"  # the runs the last sweep asked for (the missing-runs grid)
SUMMARY_FILE = "summary.csv"  # summarize's outputs, in the store's root: summary.csv, summary_runs.csv, summary.png
SAMPLES_GRID_FILE = "samples_grid.png"
FID_BY_SEED_FILE = "fid_by_seed.png"  # FID per seed per arm (the README's figure)
SAMPLES_ROWS_FILE = "samples_rows.png"  # per arm: the samples of its median-FID seed and of its worst seed
REPORT_FILE = "report.md"
TENSORBOARD_DIR = "tensorboard"

SMOKE = "smoke"
RUN_ID = re.compile(
    r"^(?P<experiment>[a-z][a-z0-9_]*)-(?P<profile>[a-z][a-z0-9_]*)(?:-(?P<variant>[a-z0-9]+(?:-[a-z0-9]+)*))?"
    r"-s(?P<seed>\d+)$"
)


def point_label(point: dict[str, Any]) -> str:
    """A point as text: `energy.beta=0.1, sgld.steps=5` (keys sorted; '' for none)."""
    return ", ".join(f"{key}={json.dumps(point[key])}" for key in sorted(point))


def point_tag(point: dict[str, Any]) -> str:
    """`g` and the first 8 hex digits of the sha256 of the point's canonical JSON ('' for none)."""
    if not point:
        return ""
    canonical = json.dumps(point, sort_keys=True, separators=(",", ":"))
    return "g" + hashlib.sha256(canonical.encode()).hexdigest()[:8]


def variant_of(smoke: bool, point: dict[str, Any] | None = None) -> str:
    """The variant part of a run id: `smoke`, the point's tag, both (`smoke-g...`), or '' for a plain run."""
    return "-".join(part for part in (SMOKE if smoke else "", point_tag(point or {})) if part)


def is_smoke(variant: str) -> bool:
    """Whether a run id's variant part marks a smoke run."""
    return variant.split("-")[0] == SMOKE


def run_id(experiment: str, profile: str, seed: int, variant: str = "") -> str:
    """`<experiment>-<profile>[-<variant>]-s<seed>`."""
    return f"{experiment}-{profile}{f'-{variant}' if variant else ''}-s{seed}"


def parse_run_id(text: str) -> tuple[str, str, str, int] | None:
    """(experiment, profile, variant, seed) of a run id, or None when the text is not one."""
    match = RUN_ID.match(text)
    if match is None:
        return None
    return match["experiment"], match["profile"], match["variant"] or "", int(match["seed"])


def is_log_file(name: str) -> bool:
    """Whether a name in a run directory is one of the log files (a single, safe path component)."""
    return name == METRICS_FILE or bool(EVENTS.fullmatch(name))
