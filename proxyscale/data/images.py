"""Image readers for the vision attribution setting: MNIST in its official IDX format (gzip or not)
and CIFAR-10 through torchvision (the paper's setting; torchvision is only imported when asked for).

Images come back as uint8 arrays of shape (n, channels, height, width) and labels as int64 arrays.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from proxyscale.errors import ConfigError, DataError

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """An array from an IDX file (MNIST's format: magic 0x0000TTNN, NN dimension sizes, data)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read IDX file ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise DataError(f"{path}: IDX header promises {expected} bytes for shape {shape}, file has {len(raw)}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def load_mnist(images: str | Path, labels: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """MNIST images (n, 1, 28, 28) uint8 and labels (n,) int64 from a pair of IDX files."""
    x, y = read_idx(images), read_idx(labels)
    if x.ndim != 3:
        raise DataError(f"{images}: expected images of shape (n, rows, cols), got {x.shape}")
    if y.ndim != 1 or len(y) != len(x):
        raise DataError(f"{labels}: {y.shape[0] if y.ndim else 0} labels for {len(x)} images in {images}")
    return x[:, None].astype(np.uint8), y.astype(np.int64)


def load_cifar10(root: str | Path, train: bool) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 (n, 3, 32, 32) uint8 and labels through torchvision (python-pickle batches under root)."""
    try:
        from torchvision.datasets import CIFAR10
    except ImportError:
        raise ConfigError("the cifar10 dataset needs torchvision (pip install torchvision)") from None
    try:
        ds = CIFAR10(str(root), train=train, download=False)
    except RuntimeError as exc:
        raise DataError(f"{root}: {exc}") from None
    return np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)), np.asarray(ds.targets, dtype=np.int64)


def downsample(images: np.ndarray, factor: int) -> np.ndarray:
    """Average-pool uint8 images by an integer factor (1 leaves them unchanged)."""
    if factor == 1:
        return images
    n, c, h, w = images.shape
    if h % factor or w % factor:
        raise ConfigError(f"downsample: factor {factor} does not divide the image size {h}x{w}")
    pooled = images.reshape(n, c, h // factor, factor, w // factor, factor).mean(axis=(3, 5))
    return np.rint(pooled).astype(np.uint8)


def load_images(dataset: dict) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of a config ``dataset:`` entry (``kind`` mnist or cifar10)."""
    kind = dataset["kind"]
    if kind == "mnist":
        return load_mnist(dataset["images"], dataset["labels"])
    if kind == "cifar10":
        return load_cifar10(dataset["root"], train=dataset.get("split", "train") == "train")
    raise ConfigError(f"attribution.vision.dataset.kind: '{kind}' is not a dataset (mnist, cifar10)")
