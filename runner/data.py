"""Datasets as in-memory uint8 tensors (N x 3 x H x W): embedded digits, CIFAR-10/100, SVHN; OOD sets."""

import math
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from runner.errors import UserError

DIGITS_SPLIT_SEED = 0
DIGITS_TEST_FRACTION = 0.2
INTERPOLATION_OFFSET = 100  # image i is averaged with image i + 100, as CLEL's reference scripts do
NOISE_SEED = 1234
# what numpy raises for a file that is not a readable archive: truncated, empty, not a zip, a damaged member,
# a pickled (object) array under allow_pickle=False
ZIP_MAGIC = b"PK\x03\x04"  # a .npz is a zip archive
MAX_NPZ_BYTES = 1 << 31  # an OOD set of 2 GiB of images is far more than any evaluation uses
NPZ_ERRORS = (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError)
# The reference implementation normalises each dataset with these published channel statistics (mean, std);
# the embedded digits have none, so theirs are computed from the training split.
REFERENCE_STATISTICS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "svhn": ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)),
}


@dataclass(frozen=True)
class ImageData:
    """A dataset's train and test splits (uint8, N x 3 x H x W), the train split's channel statistics, and the
    class labels of both splits (int64, N) where the dataset has them (the encoder's linear probe reads them)."""

    name: str
    train: torch.Tensor
    test: torch.Tensor
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    train_labels: torch.Tensor | None = None
    test_labels: torch.Tensor | None = None

    @property
    def image_size(self) -> int:
        return self.train.shape[-1]


def to_unit_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 -> float in (0, 1) at the centre of each dequantisation bin: (v + 0.5) / 256."""
    return (images.float() + 0.5) / 256


def dequantize(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """uint8 -> float with uniform dequantisation noise: (v + U(0, 1)) / 256, as CLEL trains."""
    noise = torch.rand(images.shape, generator=generator, device=images.device)
    return (images.float() + noise) / 256


def _channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    x = images.double() / 255
    return tuple(x.mean(dim=(0, 2, 3)).tolist()), tuple(x.std(dim=(0, 2, 3)).tolist())


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return (x * 255).round().clamp(0, 255).to(torch.uint8)


def load_digits(image_size: int = 16) -> ImageData:
    """scikit-learn's 8x8 digits, bilinearly upsampled, 3 channels, with a fixed stratified split."""
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    digits = sklearn_digits()
    x = torch.from_numpy(digits.images).float().div(16).unsqueeze(1)
    x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False)
    images = _to_uint8(x).expand(-1, 3, -1, -1).contiguous()
    train_idx, test_idx = train_test_split(
        np.arange(len(images)),
        test_size=DIGITS_TEST_FRACTION,
        random_state=DIGITS_SPLIT_SEED,
        stratify=digits.target,
    )
    train_idx, test_idx = np.sort(train_idx), np.sort(test_idx)
    train, test = images[train_idx], images[test_idx]
    mean, std = _channel_stats(train)
    labels = torch.from_numpy(digits.target).long()
    return ImageData("digits", train, test, mean, std, labels[train_idx], labels[test_idx])


TORCHVISION_SETS = ("cifar10", "cifar100", "svhn")


def check_data_sources(names: list[str], root: str | None) -> None:
    """UserError if a dataset among names needs a data root and none is given (cheap: reads nothing)."""
    for name in names:
        if name in TORCHVISION_SETS and root is None:
            raise UserError(f"data: dataset '{name}' needs --data-root DIR (add --download to fetch it there)")
    if root is not None and any(name in TORCHVISION_SETS for name in names):
        if "\0" in root:
            raise UserError("--data-root: not a usable path")
        try:
            if Path(root).exists() and not Path(root).is_dir():
                raise UserError(f"--data-root {root}: not a directory")
        except OSError as err:
            raise UserError(f"--data-root {root}: not a usable path ({err.strerror or type(err).__name__})") from None


def _torchvision_set(name: str, root: str | None, download: bool, train: bool) -> torch.Tensor:
    return _torchvision_set_with_labels(name, root, download, train)[0]


def _torchvision_set_with_labels(
    name: str, root: str | None, download: bool, train: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """A torchvision dataset's images (uint8 N x 3 x H x W) and labels (int64 N)."""
    import torchvision.datasets as tvd

    if root is None:
        raise UserError(f"data: dataset '{name}' needs --data-root DIR (add --download to fetch it there)")
    try:
        if name == "cifar10":
            dataset = tvd.CIFAR10(root, train=train, download=download)
            data, labels = dataset.data, dataset.targets
        elif name == "cifar100":
            dataset = tvd.CIFAR100(root, train=train, download=download)
            data, labels = dataset.data, dataset.targets
        elif name == "svhn":
            dataset = tvd.SVHN(root, split="train" if train else "test", download=download)
            return torch.from_numpy(dataset.data).contiguous(), torch.as_tensor(dataset.labels, dtype=torch.long)
        else:
            raise UserError(f"data: unknown dataset '{name}' (known: digits, cifar10, cifar100, svhn)")
    except RuntimeError as err:
        hint = "" if download else "; add --download to fetch it"
        raise UserError(f"data: {name} not found or corrupt under {root}{hint} ({err})") from None
    except (OSError, ValueError) as err:  # a data root that is a file, cannot be created, or a failed download
        raise UserError(f"data: {name} cannot be read or fetched under {root} ({type(err).__name__}: {err})") from None
    images = torch.from_numpy(np.ascontiguousarray(data)).permute(0, 3, 1, 2).contiguous()
    return images, torch.as_tensor(labels, dtype=torch.long)


def load_dataset(name: str, image_size: int, root: str | None = None, download: bool = False) -> ImageData:
    """The named training dataset: digits (embedded) or cifar10/cifar100/svhn from a data root."""
    check_data_sources([name], root)
    if name == "digits":
        return load_digits(image_size)
    train, train_labels = _torchvision_set_with_labels(name, root, download, train=True)
    test, test_labels = _torchvision_set_with_labels(name, root, download, train=False)
    mean, std = REFERENCE_STATISTICS[name]
    return ImageData(name, _resize(train, image_size), _resize(test, image_size), mean, std, train_labels, test_labels)


def _resize(images: torch.Tensor, size: int) -> torch.Tensor:
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    x = F.interpolate(images.float() / 255, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return _to_uint8(x)


def interpolations(images: torch.Tensor, offset: int = INTERPOLATION_OFFSET) -> torch.Tensor:
    """Mean of image i and image i + offset for i < N - offset (as the reference, no wrap-around), as uint8."""
    if len(images) <= offset:
        raise UserError(f"data: interpolations need more than {offset} test images, got {len(images)}")
    return ((images[:-offset].int() + images[offset:].int() + 1) // 2).to(torch.uint8)


def uniform_noise(count: int, size: int, seed: int = NOISE_SEED) -> torch.Tensor:
    """Uniform noise images, fixed seed."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (count, 3, size, size), generator=generator, dtype=torch.uint8)


def _check_npy_header(archive: np.lib.npyio.NpzFile, path: str) -> None:
    """Read x's .npy header before its data: a header that claims more than MAX_NPZ_BYTES (numpy would allocate
    that much before reading a byte of it) or another dtype or shape is refused without reading the array."""
    member = "x.npy" if "x.npy" in archive.zip.namelist() else "x"
    with archive.zip.open(member) as handle:
        if handle.read(6) != np.lib.format.MAGIC_PREFIX:
            return  # not an array: numpy returns its bytes, refused by the caller
        version = (handle.read(1)[0], handle.read(1)[0])
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
    if dtype != np.uint8 or len(shape) != 4 or shape[-1] not in (1, 3) or 0 in shape:
        raise UserError(f"--ood {path}: 'x' must be uint8 N x H x W x C with C 1 or 3, got {dtype} {tuple(shape)}")
    if math.prod(shape) > MAX_NPZ_BYTES:
        raise UserError(f"--ood {path}: 'x' has {math.prod(shape)} bytes, more than {MAX_NPZ_BYTES}: not an OOD set")


def load_npz_images(path: str, image_size: int) -> torch.Tensor:
    """An OOD set from a .npz file with `x`: uint8 N x H x W x C (C = 1 or 3), resized to image_size."""
    file = Path(path)
    try:
        if not file.is_file():
            raise UserError(f"--ood {path}: no such file")
        handle = open(file, "rb")  # closed on every path below, also when numpy refuses the file
    except OSError as err:  # a name too long, no permission
        raise UserError(f"--ood {path}: cannot be read ({err.strerror or type(err).__name__})") from None
    with handle:
        if handle.read(4) != ZIP_MAGIC:
            raise UserError(f"--ood {path}: not a .npz archive (save it with numpy.savez(path, x=images))")
        handle.seek(0)
        try:
            archive = np.load(handle, allow_pickle=False)
        except NPZ_ERRORS as err:
            raise UserError(f"--ood {path}: not a readable .npz file ({type(err).__name__}: {err})") from None
        with archive:
            if "x" not in archive.files:
                raise UserError(f"--ood {path}: no array 'x' in the file (found: {', '.join(archive.files)})")
            try:
                _check_npy_header(archive, path)
                x = archive["x"]
            except NPZ_ERRORS as err:
                raise UserError(
                    f"--ood {path}: 'x' is not a plain, readable array ({type(err).__name__}: {err})"
                ) from None
    if not isinstance(x, np.ndarray):
        raise UserError(f"--ood {path}: 'x' is not a .npy array (save it with numpy.savez(path, x=images))")
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] not in (1, 3) or x.size == 0:
        raise UserError(f"--ood {path}: 'x' must be uint8 N x H x W x C with C 1 or 3, got {x.dtype} {tuple(x.shape)}")
    images = torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2)
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    return _resize(images.contiguous(), image_size)


def ood_sets(
    data: ImageData,
    names: list[str],
    npz_files: list[str],
    root: str | None = None,
    download: bool = False,
) -> dict[str, torch.Tensor]:
    """The configured OOD sets by name, plus one per .npz file (named after the file)."""
    size, n = data.image_size, len(data.test)
    builders = {
        "interpolation": lambda: interpolations(data.test),
        "inverted": lambda: 255 - data.test,
        "uniform_noise": lambda: uniform_noise(n, size),
        "svhn": lambda: _resize(_torchvision_set("svhn", root, download, train=False), size),
        "cifar10": lambda: _resize(_torchvision_set("cifar10", root, download, train=False), size),
        "cifar100": lambda: _resize(_torchvision_set("cifar100", root, download, train=False), size),
    }
    sets = {}
    for name in names:
        if name not in builders:
            raise UserError(f"data.ood: unknown OOD set '{name}' (known: {', '.join(builders)})")
        sets[name] = builders[name]()
    for path in npz_files:
        sets[Path(path).stem] = load_npz_images(path, size)
    return sets
