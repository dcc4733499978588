"""Dotted keys: flattening tables to them and back, and `--set KEY=VALUE` overrides."""

import tomllib
from collections.abc import Iterable
from typing import Any

from runner.errors import UserError

MAX_DEPTH = 16  # tables nest at most this deep (the config's own tables: 4)


def flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}; UserError for tables nested deeper than MAX_DEPTH."""
    if prefix.count(".") >= MAX_DEPTH:
        raise UserError(f"{prefix.rstrip('.')[:80]}...: tables nested deeper than {MAX_DEPTH}: unknown key")
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


def split_assignments(text: str) -> list[str]:
    """'a=1 b="x y" c=[1, 2]' -> ['a=1', 'b="x y"', 'c=[1, 2]']: split at spaces outside quotes and brackets.

    Quotes are kept, so a value stays a TOML value (a string inside a list keeps its quotes); ValueError for an
    unbalanced quote.
    """
    items: list[str] = []
    current: list[str] = []
    quote, escaped, depth = "", False, 0
    for char in text:
        if quote:
            if escaped:
                escaped = False
            elif char == "\\" and quote == '"':
                escaped = True
            elif char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth = max(depth - 1, 0)
        elif char.isspace() and depth == 0:
            if current:
                items.append("".join(current))
                current = []
            continue
        current.append(char)
    if quote:
        raise ValueError("No closing quotation")
    if current:
        items.append("".join(current))
    return items


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
            assignments = split_assignments(str(item))
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
            except RecursionError:
                raise UserError(f"--set {key}: the value is nested too deeply") from None
            overrides[key] = value
    return overrides
