"""Help that explains: the command list and each command's flags on stdout, written from the signatures and
docstrings (runner.cli.help), in the names the README uses."""

import inspect
import re

import pytest

from runner.cli.argv import command_flags
from runner.cli.commands import Commands
from runner.cli.help import command_names, flag_sentences, readable_type
from tests.support.cli import run_main


@pytest.mark.parametrize("argv", [[], ["--help"], ["-h"], ["help"]])
def test_the_bare_command_help_and_dash_help_list_every_command_on_stdout(argv, capsys):
    code, out, err = run_main(argv, capsys)
    assert code == 0 and err == ""
    listed = [line.split()[0] for line in out.split("commands:\n")[1].split("\n\n")[0].splitlines()]
    assert listed == [name.replace("_", "-") for name in command_names(Commands)]
    assert {"local", "sweep", "summarize", "submit", "gpu-check"} <= set(listed)


@pytest.mark.parametrize("name", command_names(Commands))
def test_command_help_has_one_line_per_flag_with_hyphens_a_type_a_default_and_a_sentence(name, capsys):
    code, out, err = run_main([name.replace("_", "-"), "--help"], capsys)
    assert code == 0 and err == ""
    flags = command_flags(getattr(Commands, name))
    lines = out.split("flags:\n")[1].splitlines() if flags else []
    assert len(lines) == len(flags)
    for line, flag in zip(lines, flags.values(), strict=True):
        assert line.split()[0] == flag.option and "_" not in flag.option
        assert "(default: " in line and "Optional" not in line and "Annotated" not in line
        head, described = re.split(r"\s{2,}", line.strip(), maxsplit=1)
        assert not described.startswith("(default"), f"{flag.option} has no sentence: {line!r}"


def test_help_command_and_dash_help_give_the_same_text(capsys):
    assert run_main(["help", "local"], capsys)[1] == run_main(["local", "--help"], capsys)[1]
    code, out, err = run_main(["help", "lokal"], capsys)
    assert code == 2 and out == "" and "unknown command" in err


def test_local_help_reads_as_the_readme_writes_it(capsys):
    out = run_main(["local", "--help"], capsys)[1]
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  --")}
    assert lines["--data-root"].split()[1] == "DIR"
    assert lines["--set"].split()[1:3] == ["KEY=VALUE", "(repeatable)"]
    assert lines["--device"].split()[1] == "auto|cpu|cuda" and "(default: from the config)" in lines["--device"]
    assert lines["--seed"].split()[1] == "N" and lines["--seed"].endswith("(default: 0)")
    assert lines["--smoke"].split()[1] == "a" and lines["--smoke"].endswith("(default: off)")


def test_flag_sentences_parse_the_flags_block_with_continuation_lines():
    def command(exp: str = "", seeds: list[int] | None = None):
        """Do it.

        Flags:
          exp: the experiment
            to run
          seeds: the seeds
        """

    assert flag_sentences(command.__doc__) == {"exp": "the experiment to run", "seeds": "the seeds"}
    parameters = inspect.signature(command).parameters
    assert [readable_type(p.annotation) for p in parameters.values()] == ["TEXT", "N,N,..."]
