"""The one table from exceptions to exit codes and their one-line messages (README.md, "Exit codes").

`python -m runner` maps a failed command through it; a sweep running runs in its own process maps each failed
run through it, so a run fails the same way wherever it runs.
"""

import errno
from collections.abc import Callable

from boto3.exceptions import Boto3Error
from botocore.exceptions import BotoCoreError, ClientError

from runner.errors import (
    EXIT_DIVERGED,
    EXIT_HELD,
    EXIT_PREEMPTED,
    EXIT_USER_ERROR,
    Diverged,
    Preempted,
    UserError,
    redact,
)
from runner.store import BadKey, OwnershipLost, PointerConflict, RunHeld

EXIT_INTERRUPTED = 130
NO_SPACE = {errno.ENOSPC, errno.EDQUOT}
NOT_WRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS}


class DiskFull(OSError):
    """An OSError for a full disk or quota (matched by errno, not raised)."""


class NotWritable(OSError):
    """An OSError for a path this process may not write (matched by errno, not raised)."""


def _kind(err: BaseException) -> type[BaseException]:
    """The row an OSError belongs to, by its errno; any other exception is its own type."""
    if isinstance(err, OSError) and not isinstance(err, DiskFull | NotWritable):
        if err.errno in NO_SPACE:
            return DiskFull
        if err.errno in NOT_WRITABLE:
            return NotWritable
    return type(err)


def _path(err: BaseException) -> str:
    return str(getattr(err, "filename", None) or "a file")


# (exception types, exit code, its message): the first row an exception is an instance of applies
TABLE: list[tuple[tuple[type[BaseException], ...], int, Callable[[BaseException], str]]] = [
    ((UserError, BadKey), EXIT_USER_ERROR, lambda err: f"error: {err}"),
    ((RunHeld, OwnershipLost), EXIT_HELD, lambda err: f"held: {err}; run the same command again later"),
    (
        (DiskFull,),
        EXIT_PREEMPTED,
        lambda err: (
            f"no space left writing {_path(err)}: free space (or use another --store); the run resumes "
            "from its last checkpoint when started again"
        ),
    ),
    (
        (NotWritable,),
        EXIT_USER_ERROR,
        lambda err: f"error: cannot write {_path(err)} ({err.strerror}): make it writable or use another --store",
    ),
    (
        (PointerConflict,),
        EXIT_USER_ERROR,
        lambda err: f"error: {err}: another process writes this run; this one stopped",
    ),
    (
        (BotoCoreError, ClientError, Boto3Error),  # Boto3Error: S3UploadFailedError wraps a failed upload's error
        EXIT_PREEMPTED,
        lambda err: f"store unavailable: {_one_line(err)}; the run resumes from its last checkpoint when started again",
    ),
    ((Diverged,), EXIT_DIVERGED, lambda err: f"diverged: {err}"),
    ((Preempted,), EXIT_PREEMPTED, lambda err: f"preempted: {err}"),
    ((KeyboardInterrupt,), EXIT_INTERRUPTED, lambda err: "interrupted: the run resumes from its last checkpoint"),
]


def is_store_failure(err: BaseException) -> bool:
    """Whether the error is the store's own failure: a full disk, an unwritable path, an S3 request that failed."""
    return _kind(err) in (DiskFull, NotWritable) or isinstance(err, BotoCoreError | ClientError | Boto3Error)


def _one_line(err: BaseException) -> str:
    return redact(" ".join(str(err).split()))


def exit_code_of(err: BaseException) -> tuple[int, str] | None:
    """(exit code, message) for an exception the runner maps; None for anything else (a bug: it propagates)."""
    kind = _kind(err)
    for kinds, code, message in TABLE:
        if issubclass(kind, kinds):
            return code, " ".join(message(err).split())
    return None
