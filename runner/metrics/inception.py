"""pytorch-fid's Inception weights: the published file's name and sha256, where the verified copy lives, and
loading it with torch's weights-only unpickler (fetching and verifying a configured source: runner.run.inputs)."""

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from runner.cache import cache_dir

# The file pytorch-fid 0.3.0 downloads (its FID_WEIGHTS_URL): name, size and sha256 as published.
INCEPTION_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth"
)
INCEPTION_FILE = INCEPTION_URL.rsplit("/", 1)[-1]
INCEPTION_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
CHUNK = 1 << 20


class FeaturesUnavailable(Exception):
    """The feature network's weights cannot be had here; FID is recorded as missing."""


def weights_path() -> Path:
    """Where the verified weights live: a torch hub checkpoints folder, where pytorch-fid looks for them."""
    return cache_dir() / "hub" / "checkpoints" / INCEPTION_FILE


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def weights_only_loads() -> Iterator[None]:
    """Inside: every torch.load uses the weights-only unpickler, whatever its caller asks for."""
    previous = os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD")
    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("TORCH_FORCE_WEIGHTS_ONLY_LOAD", None)
        else:
            os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = previous


def load_inception(path: Path):
    """pytorch-fid's InceptionV3 (2048-d pool features) from a verified weights file in a hub checkpoints folder."""
    import torch.hub
    from pytorch_fid.inception import InceptionV3

    if path.name != INCEPTION_FILE:
        raise ValueError(f"{path}: pytorch-fid loads its weights only under the name {INCEPTION_FILE}")
    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(path.parent.parent))  # pytorch-fid takes no path: it looks in the hub cache
    try:
        with weights_only_loads():
            return InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]])
    except Exception as err:
        raise FeaturesUnavailable(f"Inception weights {path} do not load ({type(err).__name__}: {err})") from None
    finally:
        torch.hub.set_dir(previous)
