"""How the runner fails: its exit codes, its exceptions, the one table from exceptions to exit codes and their
one-line messages (README.md, "Exit codes"), and the redaction of credentials in those messages.

`python -m runner` maps a failed command through `exit_code_of`; a sweep running runs in its own process maps each
failed run through it, so a run fails the same way wherever it runs.
"""

import errno
import re
from collections.abc import Callable
from functools import cache

EXIT_OK = 0
EXIT_USER_ERROR = 2  # bad config, CLI argument, data file or store: fix the input, do not retry
EXIT_DIVERGED = 3  # a loss or energy became non-finite: the last good checkpoint is kept
EXIT_HELD = 4  # another live process owns the run: nothing was done; run the command again later
EXIT_PREEMPTED = 75  # SIGTERM or a store failure: the run resumes from its last checkpoint when started again
EXIT_INTERRUPTED = 130  # Ctrl-C: the run resumes from its last checkpoint
EXIT_BROKEN_PIPE = 141  # stdout closed by its reader (`... | head`): 128 + SIGPIPE, as a shell reports it


class UserError(Exception):
    """Bad input from the user; the CLI prints it as one line and exits with code 2."""


class Diverged(Exception):
    """A non-finite loss or energy; the CLI prints it as one line and exits with code 3."""


class Preempted(Exception):
    """SIGTERM arrived; a checkpoint was written and the CLI exits with code 75."""


class BadKey(ValueError):
    """A store key that is not a safe relative path; never used to read or write."""


class PointerConflict(Exception):
    """A conditional write of a pointer lost: another writer moved it since we read it."""


class RunHeld(Exception):
    """Another live process owns the run; nothing was done to it."""


class OwnershipLost(Exception):
    """This process's lease expired and another process took the run over: it stops without writing."""


class DiskFull(OSError):
    """An OSError for a full disk or quota (matched by errno, not raised)."""


class NotWritable(OSError):
    """An OSError for a path this process may not write (matched by errno, not raised)."""


NO_SPACE = {errno.ENOSPC, errno.EDQUOT}
NOT_WRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS}


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


def _one_line(err: BaseException) -> str:
    return redact(" ".join(str(err).split()))


@cache
def s3_errors() -> tuple[type[BaseException], ...]:
    """The exceptions of a failed S3 request, imported on first use (only an S3 store imports boto3).
    Boto3Error: S3UploadFailedError wraps a failed upload's error."""
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    return BotoCoreError, ClientError, Boto3Error


Row = tuple[tuple[type[BaseException], ...], int, Callable[[BaseException], str]]


@cache
def table() -> list[Row]:
    """(exception types, exit code, its message): the first row an exception is an instance of applies."""
    return [
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
            s3_errors(),
            EXIT_PREEMPTED,
            lambda err: (
                f"store unavailable: {_one_line(err)}; the run resumes from its last checkpoint when started again"
            ),
        ),
        ((Diverged,), EXIT_DIVERGED, lambda err: f"diverged: {err}"),
        ((Preempted,), EXIT_PREEMPTED, lambda err: f"preempted: {err}"),
        ((KeyboardInterrupt,), EXIT_INTERRUPTED, lambda err: "interrupted: the run resumes from its last checkpoint"),
    ]


def exit_code_of(err: BaseException) -> tuple[int, str] | None:
    """(exit code, message) for an exception the runner maps; None for anything else (a bug: it propagates)."""
    kind = _kind(err)
    for kinds, code, message in table():
        if issubclass(kind, kinds):
            return code, " ".join(message(err).split())
    return None


def is_store_failure(err: BaseException) -> bool:
    """Whether the error is the store's own failure: a full disk, an unwritable path, an S3 request that failed."""
    return _kind(err) in (DiskFull, NotWritable) or isinstance(err, s3_errors())


# user:password@ up to the last '@' before the path: a password may itself contain '@'
CREDENTIALS_IN_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/\s]*@")

# user:password@host without a scheme (an endpoint written without http://)
CREDENTIALS_WITHOUT_SCHEME = re.compile(r"(?<![\w.+-])[\w.%+~-]+:[^\s/'\"]*@(?=[\w\[])")


def redact(text: str) -> str:
    """The text with any user:password@ of a URL in it replaced by ***@ (for messages and logs)."""
    return CREDENTIALS_WITHOUT_SCHEME.sub("***@", CREDENTIALS_IN_URL.sub(r"\g<scheme>***@", str(text)))
