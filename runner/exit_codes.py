"""The one table from exceptions to exit codes and their one-line messages (README.md, "Exit codes").

`python -m runner` maps a failed command through it; a sweep running runs in its own process maps each failed
run through it, so a run fails the same way wherever it runs.
"""

from collections.abc import Callable

from botocore.exceptions import BotoCoreError, ClientError

from runner.errors import EXIT_DIVERGED, EXIT_PREEMPTED, EXIT_USER_ERROR, Diverged, Preempted, UserError
from runner.store import BadKey, PointerConflict

EXIT_INTERRUPTED = 130

# (exception types, exit code, its message): the first row an exception is an instance of applies
TABLE: list[tuple[tuple[type[BaseException], ...], int, Callable[[BaseException], str]]] = [
    ((UserError, BadKey), EXIT_USER_ERROR, lambda err: f"error: {err}"),
    (
        (PointerConflict,),
        EXIT_USER_ERROR,
        lambda err: f"error: {err}: another process writes this run; this one stopped",
    ),
    (
        (BotoCoreError, ClientError),
        EXIT_PREEMPTED,
        lambda err: f"store unavailable: {err}; the run resumes from its last checkpoint when started again",
    ),
    ((Diverged,), EXIT_DIVERGED, lambda err: f"diverged: {err}"),
    ((Preempted,), EXIT_PREEMPTED, lambda err: f"preempted: {err}"),
    ((KeyboardInterrupt,), EXIT_INTERRUPTED, lambda err: "interrupted: the run resumes from its last checkpoint"),
]


def exit_code_of(err: BaseException) -> tuple[int, str] | None:
    """(exit code, message) for an exception the runner maps; None for anything else (a bug: it propagates)."""
    for kinds, code, message in TABLE:
        if isinstance(err, kinds):
            return code, message(err)
    return None
