"""`python -m runner`: check the whole command line, run the command (fire), map failures to exit codes.

Bad input of any kind is one line on stderr and exit code 2; see README.md, "Exit codes".
"""

import sys

import fire
from botocore.exceptions import BotoCoreError, ClientError

from runner.argv import HELP_FLAGS, check_command_line
from runner.cli import Commands
from runner.cli_help import command_help, command_list, command_names
from runner.errors import EXIT_DIVERGED, EXIT_PREEMPTED, EXIT_USER_ERROR, Diverged, Preempted, UserError, redact
from runner.store import BadKey, PointerConflict

EXIT_INTERRUPTED = 130


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
    except UserError as err:
        return _fail(f"error: {err}", EXIT_USER_ERROR)
    except BadKey as err:
        return _fail(f"error: {err}", EXIT_USER_ERROR)
    except PointerConflict as err:
        return _fail(f"error: {err}: another process writes this run; this one stopped", EXIT_USER_ERROR)
    except (BotoCoreError, ClientError) as err:
        message = f"store unavailable: {err}; the run resumes from its last checkpoint when started again"
        return _fail(message, EXIT_PREEMPTED)
    except Diverged as err:
        return _fail(f"diverged: {err}", EXIT_DIVERGED)
    except Preempted as err:
        return _fail(f"preempted: {err}", EXIT_PREEMPTED)
    except KeyboardInterrupt:
        return _fail("interrupted: the run resumes from its last checkpoint", EXIT_INTERRUPTED)
    return 0


if __name__ == "__main__":
    sys.exit(main())
