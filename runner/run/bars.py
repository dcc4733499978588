"""Progress bars (tqdm, on stderr) that know where they are: a run's bars sit one line below a sweep's overall bar.

A sweep running runs in its own process opens its bar, then runs each run inside `nested()`; every bar opened
there takes the line below and is cleared when done, so the overall bar stays on top.
"""

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tqdm import tqdm

_above = 0  # how many bars are open above the bars opened now


@contextmanager
def nested() -> Iterator[None]:
    """Bars opened inside go one line lower (and are cleared when they close)."""
    global _above
    _above += 1
    try:
        yield
    finally:
        _above -= 1


def progress_bar(**options: Any) -> tqdm:
    """tqdm on stderr at the current line; kept when it is the top bar, unless `leave` says otherwise."""
    options.setdefault("leave", _above == 0)
    return tqdm(position=_above, file=sys.stderr, dynamic_ncols=True, **options)
