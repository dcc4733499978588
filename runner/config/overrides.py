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


def toml_value_of(text: str) -> Any:
    """A command-line value read as TOML (numbers, true/false, [lists], "strings"); not valid TOML: the text."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text
    except RecursionError:
        raise UserError(f"{text[:40]}...: the value is nested too deeply") from None


def assignments(
    items: str | Iterable[Any] | None, flag: str, example: str, empty: bool = True
) -> list[tuple[str, str]]:
    """(KEY, VALUE text) of `KEY=VALUE` items, several space-separated in one string or the flag repeated (an
    empty VALUE is the empty string, unless `empty` is False)."""
    if items is None:
        return []
    found = []
    for item in [items] if isinstance(items, str) else items:
        try:
            parts = split_assignments(str(item))
        except ValueError as err:
            raise UserError(f"{flag} {item}: {err} (quote values with spaces, e.g. {flag} 'key=\"a b\"')") from None
        for part in parts:
            key, sep, text = part.partition("=")
            if not sep or not key.strip() or not (empty or text.strip()):
                raise UserError(f"{flag} {part}: expected KEY=VALUE, e.g. {flag} {example}")
            found.append((key.strip(), text))
    return found


def parse_overrides(items: str | Iterable[Any] | None) -> dict[str, Any]:
    """`--set` values: 'KEY=VALUE' strings (several space-separated in one string, or repeated flags).

    VALUE is read as a TOML value (numbers, true/false, [lists], "strings"); anything that is not valid TOML
    is taken as a bare string. A later assignment of the same key wins.
    """
    return {key: toml_value_of(text) for key, text in assignments(items, "--set", "sgld.steps=20")}
