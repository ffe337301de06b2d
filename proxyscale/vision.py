"""Image classification for the attribution experiments: data readers and width-scaled model families.

Readers: MNIST in its official IDX format (gzip or not) and CIFAR-10 through torchvision (the paper's
setting; torchvision is only imported when asked for). Images come back as uint8 arrays of shape
(n, channels, height, width) and labels as int64 arrays.

Families, each with a width knob so that sizes differ only in width:
- ``convnet``: two 3x3 conv blocks of ``width`` and ``2 * width`` channels, each followed by 2x2
  max-pooling, a linear head on the flattened map. Its compute grows about as ``width**2``, so a
  16x narrower proxy costs over 100x less; the embedded MNIST default uses it.
- ``resnet18``: ResNet-18 with every stage's channel count multiplied by ``width`` (the paper's
  ResNet-18 width multiplier k: stages of 64k, 128k, 256k, 512k channels), CIFAR-style stem.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch
from torch import nn

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


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images to floats centred near zero (pixel / 255 - 0.5) / 0.25."""
    return (images.float() / 255.0 - 0.5) / 0.25


class ConvNet(nn.Module):
    """conv(width) -> pool -> conv(2 width) -> pool -> flatten -> linear.

    The head sees the pooled feature map flattened (not globally averaged): narrow widths keep the
    spatial layout, which is what lets a 2-channel proxy still learn digits.
    """

    def __init__(self, width: int, in_channels: int, num_classes: int, image_size: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        side = image_size // 4
        self.head = nn.Linear(2 * width * side * side, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:
            x = to_float(x)
        return self.head(self.features(x).flatten(1))


class _BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
            nn.GroupNorm(1, cout),
            nn.ReLU(),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
            nn.GroupNorm(1, cout),
        )
        self.skip = (
            nn.Identity()
            if stride == 1 and cin == cout
            else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.GroupNorm(1, cout))
        )

    def forward(self, x):
        return torch.relu(self.body(x) + self.skip(x))


class ResNet18(nn.Module):
    """ResNet-18 with width multiplier ``width`` (stages of 64k..512k channels), CIFAR-style stem.

    GroupNorm (one group) stands in for BatchNorm: per-sample gradients, which TRAK needs, are
    undefined for batch statistics.
    """

    def __init__(self, width: float, in_channels: int, num_classes: int, image_size: int):
        super().__init__()
        chans = [max(1, round(c * width)) for c in (64, 128, 256, 512)]
        layers = [nn.Conv2d(in_channels, chans[0], 3, 1, 1, bias=False), nn.GroupNorm(1, chans[0]), nn.ReLU()]
        cin = chans[0]
        for i, c in enumerate(chans):
            layers += [_BasicBlock(cin, c, 1 if i == 0 else 2), _BasicBlock(c, c, 1)]
            cin = c
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:
            x = to_float(x)
        return self.head(self.features(x).mean(dim=(2, 3)))


FAMILIES = {"convnet": ConvNet, "resnet18": ResNet18}


def make_classifier(family: str, width: float, in_channels: int, num_classes: int, image_size: int) -> nn.Module:
    if family not in FAMILIES:
        raise ConfigError(f"model family '{family}' is not a vision family (one of: {', '.join(FAMILIES)})")
    return FAMILIES[family](width, in_channels, num_classes, image_size)


def forward_macs(model: nn.Module, image_shape: tuple[int, int, int]) -> int:
    """Multiply-accumulates of one forward pass on one image, counted over conv and linear layers."""
    macs = 0

    def count(module, inputs, output):
        nonlocal macs
        if isinstance(module, nn.Conv2d):
            per_out = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            macs += output.numel() * per_out
        elif isinstance(module, nn.Linear):
            macs += output.numel() * module.in_features

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with torch.no_grad():
            model(torch.zeros((1, *image_shape)))
    finally:
        for h in hooks:
            h.remove()
    return macs
