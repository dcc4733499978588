"""Dotted keys: flattening tables to them and back, and `--set KEY=VALUE` overrides."""

import shlex
import tomllib
from collections.abc import Iterable
from typing import Any

from runner.errors import UserError


def flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}."""
    flat = {}
    for key, value in table.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, path + "."))
        else:
            flat[path] = value
    return flat


def unflatten(flat: dict[str, Any], source: str = "--set") -> dict[str, Any]:
    """{'a.b': 1} -> {'a': {'b': 1}}; a key given together with one of its own children is a UserError."""
    nested: dict[str, Any] = {}
    for path in sorted(flat, key=lambda p: p.count(".")):
        *parents, leaf = path.split(".")
        node = nested
        for depth, part in enumerate(parents):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise UserError(f"{source}: {'.'.join(parents[: depth + 1])} and {path} are both set")
            node = child
        if leaf in node:
            raise UserError(f"{source}: {path} and {path}.* are both set")
        node[leaf] = flat[path]
    return nested


def parse_overrides(items: str | Iterable[Any] | None) -> dict[str, Any]:
    """`--set` values: 'KEY=VALUE' strings (several space-separated in one string, or repeated flags).

    VALUE is read as a TOML value (numbers, true/false, [lists], "strings"); anything that is not valid TOML
    is taken as a bare string. A later assignment of the same key wins.
    """
    if items is None:
        return {}
    if isinstance(items, str):
        items = [items]
    overrides: dict[str, Any] = {}
    for item in items:
        try:
            assignments = shlex.split(str(item))
        except ValueError as err:
            raise UserError(f"--set {item}: {err} (quote values with spaces, e.g. --set 'key=\"a b\"')") from None
        for assignment in assignments:
            key, sep, text = assignment.partition("=")
            key = key.strip()
            if not sep or not key:
                raise UserError(f"--set {assignment}: expected KEY=VALUE, e.g. --set sgld.steps=20")
            try:
                value = tomllib.loads(f"v = {text}")["v"]
            except tomllib.TOMLDecodeError:
                value = text
            overrides[key] = value
    return overrides
