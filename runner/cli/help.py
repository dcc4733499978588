"""Help text written from the commands' signatures and docstrings: the command list and one line per flag.

A command's docstring is its summary line, an optional paragraph, and a `Flags:` block of `name: sentence` lines
(a sentence may continue on more-indented lines). `python -m runner`, `--help` and `help` print the command
list; `COMMAND --help` and `help COMMAND` print the command's flags: name (with hyphens), a readable type, the
default, and the sentence.
"""

import inspect
import types
import typing
from typing import Any

from runner.cli.argv import REPEATABLE, command_flags

PROGRAM = "python -m runner"
# The sentence of a flag that several commands share; a command's own `Flags:` block says more where it differs.
COMMON_FLAGS = {
    "exp": "the experiment (`python -m runner list` names them)",
    "profile": "the profile: tiny (digits on a CPU, minutes) or paper (CIFAR-10 as published)",
    "seed": "the run's seed",
    "seeds": "the seeds, comma-separated",
    "iterations": "training iterations (overrides train.iterations)",
    "store": "where runs live: a directory or s3://bucket/prefix",
    "device": "where to run (auto: cuda when torch sees a GPU)",
    "ood": "extra OOD sets: FILE.npz (array x, uint8 N x H x W x C), comma-separated or [a.npz,b.npz]",
    "set": "override any config key by its dotted path (TOML values); repeat it, or several in one quoted string",
    "data_root": "the folder with CIFAR-10/100 and SVHN (torchvision's layout)",
    "download": "download missing datasets into --data-root (nothing is downloaded unless asked)",
    "checkpoint_every": "checkpoint every N iterations (overrides runtime.checkpoint_every)",
    "smoke": "a smoke run: [smoke] of the config over the profile (a few iterations, a small evaluation), its own "
    "run id (<experiment>-<profile>-smoke-s<seed>), never mixed with real results",
    "reeval": "evaluate a finished run again from its last checkpoint (the previous result is kept under evals/)",
    "config": "the experiments file",
    "image": "the worker image (overrides [cluster] image)",
}
# What a text flag's value is, in its help line.
METAVARS = {
    "exp": "NAME",
    "profile": "NAME",
    "store": "DIR|s3://BUCKET/PREFIX",
    "config": "FILE",
    "data_root": "DIR",
    "image": "IMAGE",
    "out": "FILE.csv",
    "report": "FILE.md",
    "run": "RUN_ID",
    "ood": "FILE.npz",
}


def command_names(commands: type) -> list[str]:
    """The public commands, in the order the class (and its bases) define them."""
    seen: list[str] = []
    for klass in commands.__mro__:
        for name, member in vars(klass).items():
            if inspect.isfunction(member) and not name.startswith("_") and name not in seen:
                seen.append(name)
    return seen


def _summary(doc: str | None) -> str:
    return inspect.cleandoc(doc or "").split("\n\n")[0].split("\nFlags:")[0].replace("\n", " ")


def command_list(commands: type) -> str:
    """`python -m runner`'s help: usage, then one line per command with its summary."""
    names = command_names(commands)
    width = max(len(name) for name in names) + 2
    lines = [f"usage: {PROGRAM} COMMAND [--flag VALUE ...]", "", _summary(commands.__doc__), "", "commands:"]
    for name in names:
        lines.append(f"  {name.replace('_', '-'):<{width}}{_summary(getattr(commands, name).__doc__)}")
    lines += ["", f"`{PROGRAM} COMMAND --help` (or `{PROGRAM} help COMMAND`) lists a command's flags."]
    return "\n".join(lines)


def flag_sentences(doc: str | None) -> dict[str, str]:
    """The `Flags:` block of a docstring: parameter name -> its sentence."""
    sentences: dict[str, str] = {}
    lines = inspect.cleandoc(doc or "").splitlines()
    if "Flags:" not in lines:
        return sentences
    current = None
    for line in lines[lines.index("Flags:") + 1 :]:
        if not line.strip():
            break
        stripped = line.strip()
        name, colon, text = stripped.partition(": ")
        if line.startswith("  ") and not line.startswith("    ") and colon and name.isidentifier():
            current = name
            sentences[name] = text.strip()
        elif current is not None:
            sentences[current] += " " + stripped
    return sentences


def _description(doc: str | None) -> str:
    """The docstring without its Flags: block."""
    text = inspect.cleandoc(doc or "")
    return text.split("\nFlags:")[0].strip()


def readable_type(annotation: Any) -> str:
    """A type as a user reads it: N, X.Y, TEXT, a|b|c, A,B,..., KEY=VALUE (repeatable)."""
    if typing.get_origin(annotation) is typing.Annotated:
        base, *meta = typing.get_args(annotation)
        if REPEATABLE in meta:
            return "KEY=VALUE (repeatable)"
        return readable_type(base)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        return " or ".join(readable_type(a) for a in members)
    if typing.get_origin(annotation) is typing.Literal:
        return "|".join(str(v) for v in typing.get_args(annotation))
    if typing.get_origin(annotation) is list:
        (item,) = typing.get_args(annotation) or (str,)
        one = readable_type(item)
        return f"{one},{one},..."
    return {int: "N", float: "X", str: "TEXT", bool: ""}.get(annotation, getattr(annotation, "__name__", "VALUE"))


FROM_CONFIG = ("iterations", "device", "checkpoint_every", "seeds", "image", "profile")


def _default(parameter: inspect.Parameter) -> str:
    value = parameter.default
    if value is inspect.Parameter.empty:
        return "required"
    if value == "":
        return "required"
    if value is None:
        return "from the config" if parameter.name in FROM_CONFIG else "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def command_help(commands: type, name: str) -> str:
    """One command's help: usage, its description, then one line per flag."""
    method = getattr(commands, name)
    sentences = flag_sentences(method.__doc__)
    parameters = inspect.signature(method).parameters
    rows = []
    for key, flag in command_flags(method).items():
        kind = readable_type(flag.annotation)
        if key in METAVARS and kind in ("TEXT", "TEXT or TEXT", "TEXT,TEXT,..."):
            kind = kind.replace("TEXT", METAVARS[key])
        head = f"{flag.option} {kind}".rstrip() if kind else flag.option
        rows.append((head, _default(parameters[key]), sentences.get(key, COMMON_FLAGS.get(key, ""))))
    lines = [f"usage: {PROGRAM} {name.replace('_', '-')} [flags]", "", _description(method.__doc__)]
    if rows:
        width = max(len(head) for head, _, _ in rows) + 2
        lines += ["", "flags:"]
        for head, default, sentence in rows:
            default = "" if "(default" in sentence else f" (default: {default})"
            lines.append(f"  {head:<{width}}{sentence}{default}".rstrip())
    return "\n".join(lines)
