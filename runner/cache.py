"""The cache directory: FID reference statistics and verified Inception weights ($CLEL_CACHE, else
~/.cache/clel-runner)."""

import os
from pathlib import Path

from runner.errors import UserError


def cache_dir() -> Path:
    """Where reference statistics and fetched weights are cached ($CLEL_CACHE, else ~/.cache/clel-runner)."""
    if "CLEL_CACHE" in os.environ:
        return Path(os.environ["CLEL_CACHE"])
    try:
        return Path.home() / ".cache" / "clel-runner"
    except (RuntimeError, KeyError):  # no HOME and no passwd entry (a container's arbitrary user id)
        raise UserError("no home directory for the cache: set CLEL_CACHE to a directory") from None


def check_cache_dir() -> Path:
    """The cache directory, created if needed; UserError when $CLEL_CACHE (or the default) is not a usable directory.

    Called before a run touches its store, so that a cache path that is a file, or cannot be created or written,
    stops the run at once instead of after training (when FID statistics are cached).
    """
    if os.environ.get("CLEL_CACHE", "x").strip() == "":
        raise UserError("CLEL_CACHE is set but empty: expected a directory")
    path = cache_dir()
    where = f"CLEL_CACHE={path}" if os.environ.get("CLEL_CACHE") is not None else f"cache directory {path}"
    if path.exists() and not path.is_dir():
        raise UserError(f"{where}: not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"{where}: cannot be created ({err.strerror or type(err).__name__})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UserError(f"{where}: not writable")
    return path
