"""The command line checked in full before fire runs a command: names, values and types of every flag.

fire reports an unknown flag only after the command has run, and takes the last of a repeated flag. Here
every argument is matched against the command's signature first: an unknown flag, a flag without its value,
a value of the wrong type or range, or a stray argument is a UserError naming it (and the nearest valid flag),
before anything is read, trained, written or sent. The checked values are handed to fire in a canonical
`--name=<Python literal>` form, so fire passes exactly the values that were checked.
"""

import difflib
import inspect
import types
import typing
from collections.abc import Callable
from typing import Any

from fire.parser import DefaultParseValue
from pydantic import TypeAdapter, ValidationError

from runner.errors import UserError

HELP_FLAGS = ("--help", "-h")


class Repeatable:
    """Annotated[list[str], REPEATABLE]: each occurrence of the flag is one item, kept whole (--set KEY=VALUE)."""


REPEATABLE = Repeatable()
TRUE_WORDS, FALSE_WORDS = ("true", "True"), ("false", "False")


def _base_type(annotation: Any) -> Any:
    """The annotation without Annotated[...] metadata and without `| None`."""
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return _base_type(members[0])
    return annotation


def _metadata(annotation: Any) -> tuple[Any, ...]:
    """The Annotated[...] metadata of an annotation, also inside `X | None`."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return tuple(m for a in typing.get_args(annotation) for m in _metadata(a))
    return tuple(typing.get_args(annotation)[1:]) if typing.get_origin(annotation) is typing.Annotated else ()


def _is_list(annotation: Any) -> bool:
    return typing.get_origin(_base_type(annotation)) is list


class Flag:
    """One flag of a command: its name on the command line and how its text becomes a checked value."""

    def __init__(self, parameter: inspect.Parameter):
        self.name = parameter.name
        self.option = "--" + parameter.name.replace("_", "-")
        self.annotation = parameter.annotation
        self.base = _base_type(parameter.annotation)
        self.is_bool = self.base is bool
        self.is_list = _is_list(parameter.annotation)
        self.repeatable = REPEATABLE in _metadata(parameter.annotation)
        self.adapter = TypeAdapter(parameter.annotation)

    def parse(self, text: str) -> Any:
        """The Python value of one occurrence's text, before type checking."""
        if self.repeatable:
            return [text]
        if self.is_list:
            return _list_items(text)
        if self.base is str:
            return text
        if self.is_bool:
            if text in TRUE_WORDS or text in FALSE_WORDS:
                return text in TRUE_WORDS
            return text
        return DefaultParseValue(text)

    def check(self, command: str, value: Any) -> Any:
        """The value, validated against the parameter's annotation (strictly: no silent conversion)."""
        try:
            return self.adapter.validate_python(value, strict=not self.is_list)
        except ValidationError as err:
            first = err.errors()[0]
            message = first["msg"].removeprefix("Value error, ")
            raise UserError(f"{command}: {self.option} {_show(value)}: {message[:1].lower()}{message[1:]}") from None


def _show(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def _list_items(text: str) -> list[str]:
    """'a,b' or '[a, b]' or "['a', 'b']" -> ['a', 'b']; a single item is a list of one."""
    body = text.strip()
    if body.startswith("[") and body.endswith("]"):
        body = body[1:-1]
    items = [item.strip().strip("'\"").strip() for item in body.split(",")]
    return [item for item in items if item]


def command_flags(method: Callable[..., Any]) -> dict[str, Flag]:
    """The flags of a command method, by parameter name."""
    parameters = list(inspect.signature(method).parameters.values())
    return {p.name: Flag(p) for p in parameters if p.name != "self" and p.kind is p.POSITIONAL_OR_KEYWORD}


def _nearest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.0)
    return f" (did you mean {close[0]}?)" if close else ""


def _split_token(token: str) -> tuple[str, str | None]:
    key, equals, value = token[2:].partition("=")
    return key.replace("-", "_"), (value if equals else None)


def check_command_line(commands: type, argv: list[str]) -> list[str]:
    """The checked command line in canonical form for fire; UserError for anything that is not valid."""
    names = sorted(n for n, m in inspect.getmembers(commands, inspect.isfunction) if not n.startswith("_"))
    if not argv or argv[0] in HELP_FLAGS:
        return argv
    command, *rest = argv
    name = command.replace("-", "_")
    if name not in names:
        raise UserError(f"unknown command {command!r}{_nearest(name, names)}; commands: {', '.join(names)}")
    if any(token in HELP_FLAGS for token in rest):
        return [command, "--help"]
    flags = command_flags(getattr(commands, name))
    options = [flag.option for flag in flags.values()]
    given: dict[str, list[Any]] = {}
    index = 0
    while index < len(rest):
        token = rest[index]
        index += 1
        if not token.startswith("--") or token == "--":
            raise UserError(f"{command}: unexpected argument {token!r} (flags are written --name VALUE)")
        key, text = _split_token(token)
        flag = flags.get(key)
        if flag is None and key.startswith("no") and key[2:] in flags and flags[key[2:]].is_bool and text is None:
            flag, text = flags[key[2:]], "False"
        if flag is None:
            raise UserError(f"{command}: unknown flag --{key.replace('_', '-')}{_nearest('--' + key, options)}")
        if text is None and flag.is_bool:
            text = "True"
        elif text is None:
            if index == len(rest) or rest[index].startswith("--"):
                raise UserError(f"{command}: {flag.option} needs a value")
            text = rest[index]
            index += 1
        given.setdefault(flag.name, []).append(flag.parse(text))
    canonical = [command]
    for key, values in given.items():
        flag = flags[key]
        if flag.is_list:
            value: Any = [item for value in values for item in value]  # repeated list flags accumulate
        elif len(values) > 1:
            raise UserError(f"{command}: {flag.option} is given {len(values)} times")
        else:
            value = values[0]
        value = flag.check(command, value)
        canonical.append(f"--{key}={value!r}")
    return canonical
