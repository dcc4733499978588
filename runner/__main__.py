"""`python -m runner`: check the whole command line, run the command (fire), map failures to exit codes.

Bad input of any kind is one line on stderr and exit code 2; see README.md, "Exit codes".
"""

import os
import sys

import fire

from runner.cli.argv import HELP_FLAGS, check_command_line
from runner.cli.commands import Commands
from runner.cli.help import command_help, command_list, command_names
from runner.errors import EXIT_BROKEN_PIPE, UserError, exit_code_of, redact


def _fail(message: str, code: int) -> int:
    """The message as exactly one line on stderr (a multi-line one joined), credentials redacted."""
    line = " ".join(part.strip() for part in str(message).splitlines() if part.strip())
    print(redact(line), file=sys.stderr, flush=True)
    return code


def help_text(args: list[str]) -> str | None:
    """The help a command line asks for (the command list, or one command's flags), or None."""
    if not args or args == ["help"] or args[0] in HELP_FLAGS:
        return command_list(Commands)
    names = command_names(Commands)
    if args[0] == "help":
        name = args[1].replace("-", "_")
        if len(args) > 2 or name not in names:
            raise UserError(f"help {' '.join(args[1:])}: unknown command; commands: {', '.join(names)}")
        return command_help(Commands, name)
    name = args[0].replace("-", "_")
    if name in names and any(token in HELP_FLAGS for token in args[1:]):
        return command_help(Commands, name)
    return None


def main(argv: list[str] | None = None) -> int:
    """Run one command line; returns the exit code."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        text = help_text(args)
        if text is not None:
            print(text)
            return 0
        command = check_command_line(Commands, args)
        fire.Fire(Commands, command=command, name="python -m runner")
    except BrokenPipeError:  # the reader went away (`logs ... | head`): stop quietly, as a Unix tool does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except BaseException as err:
        mapped = exit_code_of(err)
        if mapped is None:
            raise
        code, message = mapped
        return _fail(message, code)
    return 0


if __name__ == "__main__":
    sys.exit(main())
