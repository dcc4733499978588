"""experiments.toml -> validated, resolved run configs: [defaults] <- [profiles.P] <- [experiments.E] <- --set."""

import difflib
import os
import re
import stat
import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator

from runner.config.overrides import flatten, unflatten
from runner.config.schema import HASHED_PATHS, SETTABLE_PATHS, RunConfig
from runner.config.sections import MAX_SEED, NAME_PATTERN, Section
from runner.errors import UserError

DEFAULT_CONFIG_FILE = "experiments.toml"
TOP_LEVEL_TABLES = ("defaults", "profiles", "experiments", "smoke", "sweep", "cluster")
NOT_A_SETTING = ("description", "question")  # keys a profile or experiment may carry that are not config values
MAX_FILE_BYTES = 1 << 20
MAX_SWEEP_SEEDS = 1000  # runner.plan.planner.MAX_SEEDS
QUESTION_PATTERN = re.compile(NAME_PATTERN)


class SweepConfig(Section):
    """[sweep]: the seeds every experiment runs with, and the grid of settings it runs at (runner.plan.planner)."""

    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    grid: dict[str, list[Any]] = Field(default_factory=dict, max_length=16)

    @field_validator("seeds", mode="before")
    @classmethod
    def _count(cls, seeds: Any) -> Any:
        if isinstance(seeds, list) and len(seeds) > MAX_SWEEP_SEEDS:  # the count, never the list, in the message
            raise ValueError(f"{len(seeds)} seeds, at most {MAX_SWEEP_SEEDS}")
        return seeds

    @field_validator("grid")
    @classmethod
    def _axes(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in grid.items():
            if key not in HASHED_PATHS:
                raise ValueError(f"grid axis {key}: not a key of a run's config that changes its result")
            if not 1 <= len(values) <= 100:
                raise ValueError(f"grid axis {key}: expected 1 to 100 values")
        return grid

    @field_validator("seeds")
    @classmethod
    def _distinct(cls, seeds: list[int]) -> list[int]:
        if len(set(seeds)) != len(seeds) or not all(0 <= s <= MAX_SEED for s in seeds):
            raise ValueError(f"expected distinct integers in [0, {MAX_SEED}]")
        return seeds


def _check_keys(flat: dict[str, Any], source: str) -> None:
    for path in flat:
        if path == "seed":
            raise UserError(f"{source}: seed: not a setting (use --seed N, or [sweep] seeds)")
        if path not in SETTABLE_PATHS:
            close = difflib.get_close_matches(path, SETTABLE_PATHS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise UserError(f"{source}: {path}: unknown key{hint}")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        if path.is_dir():
            raise IsADirectoryError
        with open(path, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):  # /dev/zero or a pipe would never end
                raise UserError(f"{path}: not a regular file: not a config file")
            data = handle.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise UserError(f"{path}: larger than {MAX_FILE_BYTES} bytes: not a config file")
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: no such config file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, not a config file") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text") from None
    except OSError as err:
        raise UserError(f"{path}: cannot be read ({err.strerror or err})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise UserError(f"{path}: not valid TOML: {err}") from None
    except RecursionError:
        raise UserError(f"{path}: not valid TOML: nested too deeply") from None


def _named_tables(raw: dict[str, Any], table: str, path: Path) -> dict[str, dict[str, Any]]:
    """[profiles.*] or [experiments.*]: tables with safe names, each a table with an optional string description."""
    value = raw.get(table, {})
    if not isinstance(value, dict):
        raise UserError(f"{path}: [{table}] must be a table of [{table}.<name>] tables")
    for name, entry in value.items():
        if not re.fullmatch(NAME_PATTERN, name):
            raise UserError(
                f"{path}: [{table}.{name}]: names are lowercase letters, digits and '_', starting with a letter "
                "(at most 63): they become directory names and Kubernetes labels"
            )
        if not isinstance(entry, dict):
            raise UserError(f"{path}: {table}.{name}: must be a table, got {type(entry).__name__}")
        if not isinstance(entry.get("description", ""), str):
            raise UserError(f"{path}: [{table}.{name}] description: must be a string")
        question = entry.get("question", "question")
        if table != "experiments" and "question" in entry:
            raise UserError(f"{path}: [{table}.{name}] question: only an experiment answers a question")
        if not isinstance(question, str) or not QUESTION_PATTERN.fullmatch(question):
            raise UserError(f'{path}: [{table}.{name}] question: expected a name like "replace" ({NAME_PATTERN})')
    return value


def _pydantic_message(err: ValidationError) -> tuple[str, str]:
    """(dotted location, lower-case message) of the first error."""
    first = err.errors()[0]
    path = ".".join(str(part) for part in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "missing":
        return path, "missing (every key needs a value in [defaults])"
    got = f", got {first['input']!r}" if "input" in first and first["type"] != "value_error" else ""
    return path, f"{message[:1].lower()}{message[1:]}{got}"


def _differences(own: dict[str, Any], changed: dict[str, Any]) -> dict[str, Any]:
    """The dotted keys whose values differ between two hashed configs, with the changed values."""
    before, after = flatten(own), flatten(changed)
    return {key: value for key, value in sorted(after.items()) if before.get(key, _ABSENT) != value}


_ABSENT = object()


class ExperimentsFile:
    """A parsed experiments.toml: defaults, profiles, experiments, sweep and cluster tables (names checked)."""

    def __init__(self, path: str | Path = DEFAULT_CONFIG_FILE):
        if not isinstance(path, str | Path) or not str(path):
            raise UserError("--config: expected the path of an experiments.toml")
        self.path = Path(path)
        raw = _read_toml(self.path)
        for key, value in raw.items():
            if key not in TOP_LEVEL_TABLES:
                raise UserError(f"{self.path}: [{key}]: unknown table (known: {', '.join(TOP_LEVEL_TABLES)})")
            if not isinstance(value, dict):
                raise UserError(f"{self.path}: {key}: must be a table ([{key}]), got {type(value).__name__}")
        self.raw = raw
        self.defaults: dict[str, Any] = raw.get("defaults", {})
        self.profiles = _named_tables(raw, "profiles", self.path)
        self.experiments = _named_tables(raw, "experiments", self.path)
        self.cluster: dict[str, Any] = raw.get("cluster", {})
        self.smoke: dict[str, Any] = raw.get("smoke", {})  # the settings --smoke applies over any profile
        self._layer(self.smoke, f"{self.path} [smoke]")  # its keys checked now: a typo there is found at once
        try:
            self.sweep = SweepConfig.model_validate(raw.get("sweep", {}))
        except ValidationError as err:
            where, message = _pydantic_message(err)
            raise UserError(f"{self.path} [sweep]: {where}: {message}".replace(": : ", ": ")) from None

    def description(self, experiment: str) -> str:
        """The experiment's one-line description, or ''."""
        return str(self.experiments.get(experiment, {}).get("description", ""))

    def questions(self) -> dict[str, str]:
        """experiment -> the study question it answers (`question = "replace"`; its verdicts' family), for the
        experiments that name one."""
        return {name: table["question"] for name, table in self.experiments.items() if "question" in table}

    def _layer(self, table: dict[str, Any], source: str) -> dict[str, tuple[Any, str]]:
        settings = {k: v for k, v in table.items() if k not in NOT_A_SETTING}
        flat = flatten(settings)
        _check_keys(flat, source)
        return {path: (value, source) for path, value in flat.items()}

    def check_names(self, experiment: Any, profile: Any) -> tuple[str, str]:
        """The experiment and profile if this file defines them; UserError naming the known ones otherwise."""
        if not isinstance(profile, str) or profile not in self.profiles:
            raise UserError(f"{self.path}: unknown profile {profile!r} (known: {', '.join(self.profiles)})")
        if not isinstance(experiment, str) or experiment not in self.experiments:
            close = difflib.get_close_matches(str(experiment), self.experiments, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise UserError(
                f"{self.path}: unknown experiment {experiment!r} ({hint}known: {', '.join(self.experiments)})"
            )
        return experiment, profile

    def resolve(
        self,
        experiment: str,
        profile: str,
        seed: int = 0,
        overrides: dict[str, Any] | None = None,
        smoke: bool = False,
    ) -> RunConfig:
        """The validated config of one run: defaults <- profile <- experiment [<- smoke] <- overrides."""
        experiment, profile = self.check_names(experiment, profile)
        merged = self._layer(self.defaults, f"{self.path} [defaults]")
        merged |= self._layer(self.profiles[profile], f"{self.path} [profiles.{profile}]")
        merged |= self._layer(self.experiments[experiment], f"{self.path} [experiments.{experiment}]")
        if smoke:
            merged |= self._layer(self.smoke, f"{self.path} [smoke]")
        own = self._validate(merged, experiment, profile, seed, smoke) if overrides else None
        merged |= self._layer(unflatten(overrides or {}), "--set")
        cfg = self._validate(merged, experiment, profile, seed, smoke)
        if own is None:
            return cfg
        return cfg.model_copy(update={"point": _differences(own.hashed_dict(), cfg.hashed_dict())})

    def _validate(
        self, merged: dict[str, tuple[Any, str]], experiment: str, profile: str, seed: int, smoke: bool
    ) -> RunConfig:
        """The RunConfig of the layered values; UserError naming the source (file table or --set) of a bad one."""
        values = {path: value for path, (value, _) in merged.items()}
        values |= {"experiment": experiment, "profile": profile, "seed": seed, "smoke": smoke}
        try:
            return RunConfig.model_validate(unflatten(values, str(self.path)))
        except ValidationError as err:
            path, message = _pydantic_message(err)
            if path == "seed":
                raise UserError(f"--seed {seed!r}: {message}") from None
            if not path:  # a check across tables
                raise UserError(f"{self.path} ({experiment}, {profile}): {message}") from None
            parts = path.split(".")  # a list item's error (data.ood.0) belongs to the list's source
            owner = next((".".join(parts[:n]) for n in range(len(parts), 0, -1) if ".".join(parts[:n]) in merged), "")
            source = merged.get(owner, (None, f"{self.path} [defaults]"))[1]
            if path.startswith("crl.") and path.count(".") == 1 and path not in merged:
                source = next((s for p, (_, s) in merged.items() if p.startswith(path + ".")), source)
            raise UserError(f"{source}: {path}: {message}") from None

    def seeds(self) -> list[int]:
        """The sweep's seeds ([sweep] seeds), default [0]."""
        return list(self.sweep.seeds)
