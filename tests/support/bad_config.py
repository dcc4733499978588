"""The bad-input tests' own experiments.toml (minimal_experiments.toml beside this module), bad versions of it, and
the working directory every bad-input case runs in.

Each bad config is that file with one line edited: the repository's experiments.toml can be tuned freely without
changing a case. The working directory holds the minimal file as experiments.toml and a store runs/ with a real
finished tiny run of it (conftest.py's minimal_finished_store).
"""

import os
from pathlib import Path

import numpy as np

from tests.support.cli import make_workdir
from tests.support.runs import run_id_of

MINIMAL_CONFIG = Path(__file__).with_name("minimal_experiments.toml")
TOML = MINIMAL_CONFIG.read_text()
TINY_HEADER = '[profiles.tiny]\ndescription = "embedded digits 16x16, CPU"\n'
assert TINY_HEADER in TOML

TINY_RUN_ID = run_id_of(iterations=2, config=MINIMAL_CONFIG)  # the finished run in runs/ (tiny_local's)


def edited(*pairs: str) -> str:
    """The minimal experiments.toml with each (old, new) replacement made (old must occur)."""
    text = TOML
    for old, new in zip(pairs[::2], pairs[1::2], strict=True):
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def tiny(*lines: str) -> str:
    """The minimal experiments.toml with lines added to [profiles.tiny]."""
    return edited(TINY_HEADER, TINY_HEADER + "".join(line + "\n" for line in lines))


def object_npz() -> bytes:
    path = Path("/tmp") / "bad-input-object.npz"
    np.savez(path, x=np.array([{"a": 1}, None], dtype=object))
    data = path.read_bytes()
    path.unlink()
    return data


def write_files(work: Path, files: dict[str, str | bytes | None]) -> None:
    """Files of a case: text, bytes, None (a directory), or "OBJECT" / "FIFO" / "LOOP" / "NPY" (made here)."""
    for name, content in files.items():
        path = work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            path.mkdir()
        elif content == "OBJECT":
            path.write_bytes(object_npz())
        elif content == "FIFO":
            os.mkfifo(path)
        elif content == "LOOP":
            path.symlink_to(path.name)
        elif content == "NPY":
            np.save(path.with_suffix(".npy"), np.zeros((2, 4, 4, 3), np.uint8))
            path.with_suffix(".npy").rename(path)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


def bad_input_workdir(tmp_path: Path, monkeypatch, minimal_finished_store: Path) -> Path:
    """A working directory with the minimal experiments.toml and its finished store as runs/; a private
    CLEL_CACHE; no S3 endpoint or addressing from the environment."""
    work = make_workdir(tmp_path, monkeypatch, minimal_finished_store, MINIMAL_CONFIG)
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "CLEL_S3_ADDRESSING"):
        monkeypatch.delenv(name, raising=False)
    return work
