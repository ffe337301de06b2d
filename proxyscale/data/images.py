"""Image readers for the vision attribution setting: MNIST in its official IDX format (gzip or not)
and CIFAR-10 in its python-pickle batches (the paper's setting).

Images come back as uint8 arrays of shape (n, channels, height, width) and labels as int64 arrays.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from proxyscale.data.files import read_bytes
from proxyscale.errors import ConfigError, DataError
from proxyscale.io import atomic_path

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """An array from an IDX file (MNIST's format: magic 0x0000TTNN, NN dimension sizes, data)."""
    raw = read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number 0x{raw[:4].hex()})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: IDX header is cut off ({len(raw)} bytes; {ndim} dimensions need {header})")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise DataError(
            f"{path}: IDX header promises {expected:,} bytes for shape {shape}, file has {len(raw):,} "
            f"({'cut off' if len(raw) < expected else 'extra bytes'}); fetch the file again"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def load_mnist(images: str | Path, labels: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """MNIST images (n, 1, 28, 28) uint8 and labels (n,) int64 from a pair of IDX files."""
    x, y = read_idx(images), read_idx(labels)
    if x.ndim != 3:
        raise DataError(f"{images}: expected images of shape (n, rows, cols), got {x.shape}")
    if y.ndim != 1 or len(y) != len(x):
        raise DataError(f"{labels}: {y.shape[0] if y.ndim else 0} labels for {len(x)} images in {images}")
    return x[:, None].astype(np.uint8), y.astype(np.int64)


CIFAR10_FILES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}


def load_cifar10(root: str | Path, train: bool) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 (n, 3, 32, 32) uint8 and labels from the python-pickle batches under
    ``root/cifar-10-batches-py`` (the official archive, as torchvision's ``CIFAR10`` reads it, giving the
    same arrays; read here directly so that no checksum of the official files is required)."""
    folder = Path(root) / "cifar-10-batches-py"
    images, labels = [], []
    for name in CIFAR10_FILES["train" if train else "test"]:
        path = folder / name
        if not path.exists():
            raise DataError(f"{path}: no such CIFAR-10 batch (expected the cifar-10-batches-py folder under {root})")
        try:
            batch = pickle.loads(read_bytes(path), encoding="latin1")
            data, targets = np.asarray(batch["data"], dtype=np.uint8), batch["labels"]
        except DataError:
            raise
        except Exception as exc:  # unpickling damaged bytes can raise almost anything
            raise DataError(f"{path}: not a CIFAR-10 python batch ({type(exc).__name__}: {exc})") from None
        if data.ndim != 2 or data.shape[1] != 3072 or len(targets) != len(data):
            raise DataError(f"{path}: expected n x 3072 pixels and n labels, got {data.shape} and {len(targets)}")
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(np.asarray(targets, dtype=np.int64))
    return np.concatenate(images), np.concatenate(labels)


def write_cifar10(root: str | Path, split_arrays: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """Write ``{"train": (images, labels), "test": ...}`` as CIFAR-10 python batches under
    ``root/cifar-10-batches-py`` (train split over the five ``data_batch`` files): how small samples
    in the paper's format are made, e.g. from other images padded to 3x32x32."""
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for split, (images, labels) in split_arrays.items():
        if images.shape[1:] != (3, 32, 32):
            raise ValueError(f"CIFAR-10 images are 3x32x32, not {images.shape[1:]}")
        names = CIFAR10_FILES[split]
        for name, idx in zip(names, np.array_split(np.arange(len(images)), len(names))):
            batch = {"batch_label": name, "data": images[idx].reshape(len(idx), -1), "labels": labels[idx].tolist()}
            with atomic_path(folder / name) as tmp, open(tmp, "wb") as f:
                pickle.dump(batch, f)
    meta = {"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]}
    with atomic_path(folder / "batches.meta") as tmp, open(tmp, "wb") as f:
        pickle.dump(meta, f)


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
