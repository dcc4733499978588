"""The one planner: experiments x grid points x seeds of a profile, each run resolved and checked before anything
runs. `sweep`, `render`, `submit` and summarize's record of a sweep all take their runs from here.

A grid is a table of axes, `{"energy.beta": [0.01, 0.1, 1.0]}` ([sweep] grid in experiments.toml, or
`--grid 'energy.beta=0.01,0.1,1'`); its points are the product of the axes. A point is applied as overrides, so it
becomes part of the run id (runner.layout) and `local --set energy.beta=0.1` names the same run.
"""

import itertools
import math
from dataclasses import dataclass
from typing import Any

from runner.config import ExperimentsFile, RunConfig
from runner.config.overrides import assignments, toml_value_of
from runner.config.schema import HASHED_PATHS
from runner.errors import UserError
from runner.plan.spec import RunSpec

MAX_SEEDS = 1000  # seeds of one plan, and of [sweep] seeds
MAX_GRID_POINTS = 1000  # points of one grid (the product of its axes)
MAX_RUNS = 10_000  # runs of one plan: experiments x points x seeds


@dataclass(frozen=True)
class PlannedRun:
    """A run of a plan: its spec (how to launch it) and its resolved config (what it is)."""

    spec: RunSpec
    config: RunConfig

    @property
    def run_id(self) -> str:
        return self.config.run_id


def _split_values(text: str) -> list[str]:
    """'0.01,0.1,[1, 2],"a,b"' -> ['0.01', '0.1', '[1, 2]', '"a,b"']: commas outside brackets and quotes."""
    parts, current, depth, quote = [], [], 0, ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    return [*parts, "".join(current).strip()]


def parse_grid(text: str | list[str] | None) -> dict[str, list[Any]]:
    """`--grid 'energy.beta=0.01,0.1,1 sgld.steps=10,20'` (or the flag repeated): axis -> values (TOML values)."""
    pairs = assignments(text, "--grid", "energy.beta=0.01,0.1,1", empty=False)
    return {key: [toml_value_of(value) for value in _split_values(values)] for key, values in pairs}


def check_grid(grid: dict[str, list[Any]], source: str) -> None:
    """Every axis is a setting that changes a run's result and has at least one value."""
    for key, values in grid.items():
        if key not in HASHED_PATHS:
            why = "a runtime setting does not change the result" if key.startswith("runtime.") else "unknown key"
            raise UserError(f"{source}: grid axis {key}: {why} (an axis must be a key of the run's config)")
        if not isinstance(values, list) or not values:
            raise UserError(f"{source}: grid axis {key}: expected a non-empty list of values")


def grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The product of the axes, in the order given ([{}] without a grid)."""
    keys = list(grid)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(grid[k] for k in keys))]


def _distinct(values: list[Any], what: str) -> None:
    """UserError naming the first value listed twice."""
    seen: set[str] = set()
    for value in values:
        if repr(value) in seen:
            raise UserError(f"{what}: {value} is listed twice")
        seen.add(repr(value))


def _resolve(spec: RunSpec, experiments: ExperimentsFile, point: dict[str, Any]) -> RunConfig:
    """The spec's config; an error in a grid point's value names --grid, not --set."""
    try:
        return spec.resolve(experiments)
    except UserError as err:
        message = str(err)
        if any(message.startswith(f"--set: {key}:") for key in point):
            raise UserError(f"--grid: {message[len('--set: ') :]} (experiment {spec.experiment})") from None
        raise


def plan_runs(
    experiments: ExperimentsFile,
    profile: str,
    names: list[str] | None = None,
    seeds: list[int] | None = None,
    overrides: dict[str, Any] | None = None,
    smoke: bool = False,
    grid: dict[str, list[Any]] | None = None,
) -> list[PlannedRun]:
    """Every run of experiments x grid points x seeds, resolved (UserError on any bad name, value or point);
    experiments, seeds and grid default to the file's ([experiments.*], [sweep] seeds, [sweep] grid)."""
    chosen = names or list(experiments.experiments)
    seeds = seeds if seeds is not None else experiments.seeds()
    if len(seeds) > MAX_SEEDS:  # the count, never the list: a plan of 100,000 seeds is one short line
        raise UserError(f"--seeds: {len(seeds)} seeds, at most {MAX_SEEDS} in one sweep")
    _distinct(chosen, "--exp")
    _distinct(seeds, "--seeds")
    grid = experiments.sweep.grid if grid is None else grid
    check_grid(grid, "--grid")
    points = math.prod(len(values) for values in grid.values())
    if points > MAX_GRID_POINTS:
        raise UserError(f"--grid: {points} points (the product of its axes), at most {MAX_GRID_POINTS}")
    if len(chosen) * points * len(seeds) > MAX_RUNS:
        raise UserError(
            f"{len(chosen)} experiments x {points} points x {len(seeds)} seeds = {len(chosen) * points * len(seeds)} "
            f"runs, at most {MAX_RUNS} in one plan"
        )
    planned: dict[str, PlannedRun] = {}
    for name in chosen:
        for point in grid_points(grid):
            for seed in seeds:
                spec = RunSpec.of(name, profile, seed, {**(overrides or {}), **point}, smoke, str(experiments.path))
                run = PlannedRun(spec, _resolve(spec, experiments, point))
                if run.run_id in planned:
                    other = dict(planned[run.run_id].spec.overrides)
                    raise UserError(
                        f"--grid: {point} and {{{', '.join(f'{k}: {other[k]}' for k in grid)}}} are the same point "
                        f"({run.run_id})"
                    )
                planned[run.run_id] = run
    return list(planned.values())
