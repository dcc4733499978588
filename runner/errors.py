"""Exit codes, the exceptions the CLI maps to them, and redaction of secrets in messages."""

import re

EXIT_OK = 0
EXIT_USER_ERROR = 2  # bad config, CLI argument, data file or store: fix the input, do not retry
EXIT_DIVERGED = 3  # a loss or energy became non-finite: the last good checkpoint is kept
EXIT_HELD = 4  # another live process owns the run: nothing was done; run the command again later
EXIT_PREEMPTED = 75  # SIGTERM received: a checkpoint was written, run the same command again


class UserError(Exception):
    """Bad input from the user; the CLI prints it as one line and exits with code 2."""


class Diverged(Exception):
    """A non-finite loss or energy; the CLI prints it as one line and exits with code 3."""


class Preempted(Exception):
    """SIGTERM arrived; a checkpoint was written and the CLI exits with code 75."""


# user:password@ up to the last '@' before the path: a password may itself contain '@'
CREDENTIALS_IN_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/\s]*@")


# user:password@host without a scheme (an endpoint written without http://)
CREDENTIALS_WITHOUT_SCHEME = re.compile(r"(?<![\w.+-])[\w.%+~-]+:[^\s/'\"]*@(?=[\w\[])")


def redact(text: str) -> str:
    """The text with any user:password@ of a URL in it replaced by ***@ (for messages and logs)."""
    return CREDENTIALS_WITHOUT_SCHEME.sub("***@", CREDENTIALS_IN_URL.sub(r"\g<scheme>***@", str(text)))
