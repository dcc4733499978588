"""Exit codes and the one exception type that means "the user gave bad input"."""

EXIT_OK = 0
EXIT_USER_ERROR = 2  # bad config, CLI argument, data file or store: fix the input, do not retry
EXIT_DIVERGED = 3  # a loss or energy became non-finite: the last good checkpoint is kept
EXIT_PREEMPTED = 75  # SIGTERM received: a checkpoint was written, run the same command again


class UserError(Exception):
    """Bad input from the user; the CLI prints it as one line and exits with code 2."""


class Diverged(Exception):
    """A non-finite loss or energy; the CLI prints it as one line and exits with code 3."""


class Preempted(Exception):
    """SIGTERM arrived; a checkpoint was written and the CLI exits with code 75."""
