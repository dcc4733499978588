"""The command line: `python -m runner <command>` (fire). Bad input: one line on stderr, exit code 2."""

import sys

import fire

from runner import cli
from runner.errors import (
    EXIT_DIVERGED,
    EXIT_PREEMPTED,
    EXIT_USER_ERROR,
    Diverged,
    Preempted,
    UserError,
)


def main() -> int:
    """Run the CLI; map the runner's exceptions to one line and an exit code."""
    try:
        fire.Fire(cli.Commands, name="python -m runner")
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    except Diverged as err:
        print(f"diverged: {err}", file=sys.stderr)
        return EXIT_DIVERGED
    except Preempted as err:
        print(f"preempted: {err}", file=sys.stderr)
        return EXIT_PREEMPTED
    except KeyboardInterrupt:
        print("interrupted: the run resumes from its last checkpoint", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
