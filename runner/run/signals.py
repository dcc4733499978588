"""SIGTERM (preemption) and Ctrl-C during a run: the step in progress finishes and is checkpointed."""

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from runner.errors import Preempted


class Sigterm:
    """SIGTERM (and Ctrl-C) handling: outside training it stops the run at once; inside, at the end of the step."""

    def __init__(self) -> None:
        self.requested: str | None = None  # the signal's name once one arrived
        self.defer = False

    def __call__(self, signum: int, frame: Any) -> None:
        if signum == signal.SIGINT and self.requested:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now, the last periodic checkpoint stays
        self.requested = signal.Signals(signum).name
        if not self.defer:
            raise Preempted("stopped before or after training: nothing to checkpoint; run the same command again")


@contextmanager
def handle_sigterm(also_interrupt: bool = False) -> Iterator[Sigterm]:
    """Install the SIGTERM handler (and for SIGINT too, if asked) for the duration of a run."""
    handler = Sigterm()
    signals = [signal.SIGTERM, *([signal.SIGINT] if also_interrupt else [])]
    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield handler
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
