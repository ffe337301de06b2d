"""Width-scaled image classifiers for the vision attribution setting.

Families, each with a width knob so that sizes differ only in width:
- ``convnet``: two 3x3 conv blocks of ``width`` and ``2 * width`` channels, each followed by 2x2
  max-pooling, a linear head on the flattened map. Its compute grows about as ``width**2``, so a
  16x narrower proxy costs over 100x less.
- ``resnet18``: ResNet-18 with every stage's channel count multiplied by ``width`` (the paper's
  ResNet-18 width multiplier k: stages of 64k, 128k, 256k, 512k channels), CIFAR-style stem.
- ``mlp``: one hidden layer of ``width`` ReLU units on the flattened image, and ``logreg``: a linear
  classifier on the flattened image (``width`` does not apply). These are the models of the standard
  MNIST attribution benchmarks, so TRAK and LDS here can be compared with published figures. An MLP's
  compute grows linearly with its width, so the embedded default's widths 8 to 8192 span 1,024x of
  compute while the widest costs no more to train than a 32-channel ConvNet.

Every family takes float images standardised per channel (:func:`standardize`, with the statistics
:func:`pixel_stats` records for the training images).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from proxyscale.errors import ConfigError


def pixel_stats(images: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of uint8 images (n, c, h, w), in units of pixel / 255.

    The attribution dataset records them for its training images, so every model sees inputs of mean 0
    and variance 1 per channel (as torchvision's ``Normalize`` with a dataset's statistics does). A
    fixed shift would not do: MNIST's pixels average 0.13, and a one-hidden-layer MLP fed inputs whose
    mean is far from zero loses most of a narrow hidden layer to ReLU units that never fire again.
    """
    x = images.astype(np.float64) / 255.0
    return x.mean(axis=(0, 2, 3)).tolist(), x.std(axis=(0, 2, 3)).tolist()


def standardize(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 images (n, c, h, w) to floats standardised per channel: (pixel / 255 - mean) / std."""
    shape = (1, len(mean), 1, 1)
    mean_t = torch.tensor(mean, dtype=torch.float32, device=images.device).view(shape)
    std_t = torch.tensor(std, dtype=torch.float32, device=images.device).view(shape)
    return (images.float() / 255.0 - mean_t) / std_t


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
        return self.head(self.features(x).mean(dim=(2, 3)))


class MLP(nn.Module):
    """flatten -> linear(width) -> ReLU -> linear; ``width=0`` leaves out the hidden layer (logistic regression)."""

    def __init__(self, width: int, in_channels: int, num_classes: int, image_size: int):
        super().__init__()
        inputs = in_channels * image_size * image_size
        hidden = [nn.Linear(inputs, int(width)), nn.ReLU()] if width else []
        self.layers = nn.Sequential(nn.Flatten(), *hidden, nn.Linear(int(width) or inputs, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def _logreg(width: float, in_channels: int, num_classes: int, image_size: int) -> MLP:
    return MLP(0, in_channels, num_classes, image_size)


FAMILIES = {"convnet": ConvNet, "resnet18": ResNet18, "mlp": MLP, "logreg": _logreg}


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
            model(torch.zeros((1, *image_shape), device=next(model.parameters()).device))
    finally:
        for h in hooks:
            h.remove()
    return macs
