"""A run's inputs, checked before its store is touched: the cache directory, the data sources, the OOD files
and the FID feature weights.

pytorch-fid's Inception weights come from a path, an s3:// key or pytorch-fid's download and are verified by
sha256 before any byte of them is unpickled. A file or key whose digest is not the published file's is refused
(UserError: exit 2 before training), so a crafted pickle never runs and no other network is ever reported as
`fid`; a download that is not possible here means FID is recorded as missing.
"""

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from runner.cache import check_cache_dir
from runner.config import RunConfig
from runner.data import check_data_sources, load_npz_images
from runner.errors import UserError, redact
from runner.metrics.inception import (
    INCEPTION_SHA256,
    INCEPTION_URL,
    FeaturesUnavailable,
    file_sha256,
    weights_path,
)


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


@dataclass(frozen=True)
class FidWeights:
    """The FID feature network's weights for a run: a verified file, or why there is none (FID then missing)."""

    path: Path | None = None
    unavailable: str | None = None


def fid_weights(cfg: RunConfig, log) -> FidWeights:
    """FidWeights for the run's feature network (none needed for the shipped digits network)."""
    if cfg.fid_features != "inception":
        return FidWeights()
    try:
        return FidWeights(fetch_inception_weights(cfg.eval.inception_weights))
    except FeaturesUnavailable as err:
        log(f"FID: {err}; fid will be recorded as missing")
        return FidWeights(unavailable=str(err))


def check_inputs(cfg: RunConfig) -> None:
    """What can be checked of a run's inputs without loading its dataset (a sweep checks every run with this
    before it starts the first): the cache directory, the data root, the OOD files and configured FID weights."""
    check_cache_dir()
    rt = cfg.runtime
    check_data_sources([cfg.data.dataset, *cfg.data.ood], rt.data_root or None)
    for path in rt.ood_files:
        load_npz_images(path, cfg.data.image_size)
    if cfg.fid_features == "inception" and cfg.eval.inception_weights:
        fetch_inception_weights(cfg.eval.inception_weights)
