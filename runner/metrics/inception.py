"""pytorch-fid's Inception weights: fetched from a path, an s3:// key or pytorch-fid's download, verified by
sha256 before any byte of them is unpickled, then loaded with torch's weights-only unpickler.

A file or key whose digest is not the published file's is refused (UserError: exit 2 before training), so a
crafted pickle never runs and no other network is ever reported as `fid`.
"""

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from runner.errors import UserError, redact

# The file pytorch-fid 0.3.0 downloads (its FID_WEIGHTS_URL): name, size and sha256 as published.
INCEPTION_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth"
)
INCEPTION_FILE = INCEPTION_URL.rsplit("/", 1)[-1]
INCEPTION_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
CHUNK = 1 << 20


class FeaturesUnavailable(Exception):
    """The feature network's weights cannot be had here; FID is recorded as missing."""


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


def _verified(path: Path, expected: str = INCEPTION_SHA256) -> bool:
    return path.is_file() and file_sha256(path) == expected


def _refuse(source: str, digest: str) -> UserError:
    return UserError(
        f"eval.inception_weights {redact(source)}: sha256 {digest[:16]}... is not pytorch-fid's FID weights "
        f"({INCEPTION_SHA256[:16]}...): refusing to load it"
    )


def _install(candidate: Path, source: str) -> Path:
    """Move a fetched candidate into place if its digest is the published one; UserError otherwise."""
    digest = file_sha256(candidate)
    if digest != INCEPTION_SHA256:
        candidate.unlink(missing_ok=True)
        raise _refuse(source, digest)
    target = weights_path()
    os.replace(candidate, target)
    return target


def _scratch_file() -> Path:
    weights_path().parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=weights_path().parent, prefix=".incoming-")
    os.close(fd)
    return Path(name)


def check_object_store(uri: str) -> None:
    """UserError if the bucket of an s3:// URI cannot be used (unreachable endpoint, no bucket, no access)."""
    from runner.store import open_store

    bucket = "/".join(uri.split("/", 3)[:3])
    try:
        open_store(bucket).check()
    except UserError as err:
        raise UserError(f"eval.inception_weights {redact(uri)}: {err}") from None


def fetch_inception_weights(setting: str) -> Path:
    """The verified weights file for eval.inception_weights ('' = pytorch-fid's download, a path, or s3://...).

    UserError for a configured file or key that is missing or has another digest; FeaturesUnavailable when the
    download is not possible here (FID is then recorded as missing).
    """
    if setting.startswith("s3://"):
        from runner.store import download_object

        check_object_store(setting)
        scratch = _scratch_file()
        try:
            download_object(setting, scratch)
        except KeyError:
            scratch.unlink(missing_ok=True)
            raise UserError(f"eval.inception_weights {redact(setting)}: no such object") from None
        except BaseException:
            scratch.unlink(missing_ok=True)
            raise
        return _install(scratch, setting)
    if setting:
        source = Path(setting).expanduser()
        try:
            if not source.is_file():
                raise UserError(f"eval.inception_weights {setting}: no such file")
            digest = file_sha256(source)
        except OSError as err:  # a name too long, no permission
            raise UserError(f"eval.inception_weights {setting}: cannot be read ({err.strerror or err})") from None
        if digest != INCEPTION_SHA256:
            raise _refuse(setting, digest)
        if not _verified(weights_path()):
            scratch = _scratch_file()
            scratch.write_bytes(source.read_bytes())
            _install(scratch, setting)
        return weights_path()
    if _verified(weights_path()):
        return weights_path()
    import torch.hub

    scratch = _scratch_file()
    try:
        torch.hub.download_url_to_file(INCEPTION_URL, str(scratch), hash_prefix=None, progress=False)
    except Exception as err:  # offline: URLError, OSError, HTTPError...
        scratch.unlink(missing_ok=True)
        raise FeaturesUnavailable(f"pytorch-fid Inception weights could not be downloaded ({err})") from None
    try:
        return _install(scratch, INCEPTION_URL)
    except UserError as err:
        raise FeaturesUnavailable(str(err)) from None


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
