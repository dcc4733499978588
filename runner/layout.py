"""A run's identity and the names of what it writes: the one place the run-id format is spelled.

run id: `<experiment>-<profile>[-<variant>]-s<seed>`, where the variant marks runs that must never mix with the
profile's real ones: `smoke` (a smoke run). Experiment and profile names are `[a-z][a-z0-9_]*`, so a run id is a
safe path part and a Kubernetes label value.
"""

import re

SMOKE = "smoke"
RUN_ID = re.compile(
    r"^(?P<experiment>[a-z][a-z0-9_]*)-(?P<profile>[a-z][a-z0-9_]*)(?:-(?P<variant>[a-z0-9]+(?:-[a-z0-9]+)*))?"
    r"-s(?P<seed>\d+)$"
)


def variant_of(smoke: bool) -> str:
    """The variant part of a run id ('' for a real run)."""
    return SMOKE if smoke else ""


def run_id(experiment: str, profile: str, seed: int, variant: str = "") -> str:
    """`<experiment>-<profile>[-<variant>]-s<seed>`."""
    return f"{experiment}-{profile}{f'-{variant}' if variant else ''}-s{seed}"


def parse_run_id(text: str) -> tuple[str, str, str, int] | None:
    """(experiment, profile, variant, seed) of a run id, or None when the text is not one."""
    match = RUN_ID.match(text)
    if match is None:
        return None
    return match["experiment"], match["profile"], match["variant"] or "", int(match["seed"])
