"""The command line: `python -m runner <command>` (fire). Bad input: one line on stderr, exit code 2."""

import sys

import fire
from boto3.exceptions import Boto3Error
from botocore.exceptions import BotoCoreError, ClientError

from runner import cli
from runner.errors import (
    EXIT_DIVERGED,
    EXIT_PREEMPTED,
    EXIT_USER_ERROR,
    Diverged,
    Preempted,
    UserError,
)
from runner.store import PointerConflict


def main() -> int:
    """Run the CLI; map the runner's exceptions to one line and an exit code."""
    try:
        fire.Fire(cli.Commands, name="python -m runner")
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    except PointerConflict as err:
        print(f"error: {err}: another process writes this run; this one stopped", file=sys.stderr)
        return EXIT_USER_ERROR
    except (BotoCoreError, ClientError, Boto3Error) as err:
        print(f"store unavailable: {err}; the run resumes from its last checkpoint when started again", file=sys.stderr)
        return EXIT_PREEMPTED
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
