"""RunSpec: one run as every launcher hands it on (experiment, profile, seed, overrides, smoke, config file).

`resolve()` gives its validated RunConfig; `to_argv()` the flags of `local` (or `worker`) that resolve exactly that
config in another process or a Kubernetes pod. Overrides travel as `--set KEY=VALUE` with VALUE written as TOML,
so `parse_overrides(to_argv())` gives back the same values.
"""

import json
import math
from dataclasses import dataclass
from typing import Any

from runner.config import DEFAULT_CONFIG_FILE, ExperimentsFile, RunConfig
from runner.config.overrides import flatten


def toml_string(text: str) -> str:
    """A TOML basic string, in ASCII: quote, backslash, control and non-ASCII characters escaped (\\uXXXX or
    \\UXXXXXXXX by code point: JSON's surrogate pairs for characters beyond U+FFFF are not TOML)."""
    out = []
    for char in text:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif code < 0x20 or code >= 0x7F:
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def toml_value(value: Any) -> str:
    """A value as TOML text: numbers, booleans, strings, lists and inline tables."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")  # JSON's Infinity is not TOML
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{toml_string(str(k))} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"not a TOML value: {value!r}")


@dataclass(frozen=True)
class RunSpec:
    """What identifies one run to a launcher; its RunConfig (and run id) follow from it."""

    experiment: str
    profile: str
    seed: int
    overrides: tuple[tuple[str, Any], ...] = ()  # (dotted key, value), in the order they apply
    smoke: bool = False
    config_file: str = DEFAULT_CONFIG_FILE

    @classmethod
    def of(
        cls,
        experiment: str,
        profile: str,
        seed: int,
        overrides: dict[str, Any] | None = None,
        smoke: bool = False,
        config_file: str = DEFAULT_CONFIG_FILE,
    ) -> "RunSpec":
        """A spec from an overrides dict (tables flattened to dotted keys)."""
        return cls(experiment, profile, seed, tuple(flatten(overrides or {}).items()), smoke, str(config_file))

    def resolve(self, experiments: ExperimentsFile | None = None) -> RunConfig:
        """The run's validated config (UserError on a bad name or value)."""
        experiments = experiments or ExperimentsFile(self.config_file)
        return experiments.resolve(self.experiment, self.profile, self.seed, dict(self.overrides), self.smoke)

    def with_overrides(self, **extra: Any) -> "RunSpec":
        """The same spec with more overrides (dotted keys spelled with __: runtime__threads=1)."""
        added = tuple((key.replace("__", "."), value) for key, value in extra.items())
        return RunSpec(self.experiment, self.profile, self.seed, self.overrides + added, self.smoke, self.config_file)

    def to_argv(self) -> list[str]:
        """The flags of `local` (and `worker`) that resolve this run."""
        argv = ["--exp", self.experiment, "--profile", self.profile, "--seed", str(self.seed)]
        if self.config_file != DEFAULT_CONFIG_FILE:
            argv += ["--config", self.config_file]
        for key, value in self.overrides:
            argv += ["--set", f"{key}={toml_value(value)}"]
        return argv + (["--smoke"] if self.smoke else [])
