"""MNIST IDX reading, downsampling and the width-scaled vision families."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

from conftest import DATA
from proxyscale.data.images import downsample, load_mnist, read_idx
from proxyscale.errors import ConfigError, DataError
from proxyscale.models.vision import forward_macs, make_classifier


def write_idx(path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_idx_round_trip_and_mnist_pair(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 4, 3))
    write_idx(tmp_path / "x.gz", images)
    write_idx(tmp_path / "y.gz", np.arange(5))
    assert np.array_equal(read_idx(tmp_path / "x.gz"), images)
    x, y = load_mnist(tmp_path / "x.gz", tmp_path / "y.gz")
    assert x.shape == (5, 1, 4, 3) and x.dtype == np.uint8 and y.tolist() == [0, 1, 2, 3, 4]


def test_embedded_mnist_reads_as_the_official_test_set():
    x, y = load_mnist(DATA / "vision/t10k-images-idx3-ubyte.gz", DATA / "vision/t10k-labels-idx1-ubyte.gz")
    assert x.shape == (10000, 1, 28, 28) and sorted(np.unique(y)) == list(range(10))
    assert np.bincount(y).min() > 850  # every digit is well represented


def test_bad_idx_files_get_clear_errors(tmp_path):
    (tmp_path / "junk").write_bytes(b"PK\x03\x04 not idx")
    with pytest.raises(DataError, match="bad magic"):
        read_idx(tmp_path / "junk")
    write_idx(tmp_path / "x.gz", np.zeros((5, 2, 2)))
    raw = gzip.open(tmp_path / "x.gz").read()[:-3]
    (tmp_path / "short").write_bytes(raw)
    with pytest.raises(DataError, match="promises"):
        read_idx(tmp_path / "short")
    write_idx(tmp_path / "y.gz", np.arange(4))
    with pytest.raises(DataError, match="4 labels for 5 images"):
        load_mnist(tmp_path / "x.gz", tmp_path / "y.gz")


def test_downsample_averages_blocks():
    img = np.array([[[[0, 2, 10, 10], [2, 4, 10, 10], [0, 0, 0, 0], [0, 0, 0, 4]]]], dtype=np.uint8)
    assert downsample(img, 2)[0, 0].tolist() == [[2, 10], [0, 1]]
    with pytest.raises(ConfigError, match="does not divide"):
        downsample(img, 3)


@pytest.mark.parametrize("family, width, shape", [("convnet", 2, (1, 14, 14)), ("resnet18", 0.0625, (3, 32, 32))])
def test_families_classify_and_scale_with_width(family, width, shape):
    small = make_classifier(family, width, shape[0], 10, shape[1])
    big = make_classifier(family, 4 * width, shape[0], 10, shape[1])
    assert small(torch.zeros((2, *shape))).shape == (2, 10)
    # Conv compute grows about as width^2: 4x the width costs well over 4x the FLOPs.
    assert forward_macs(big, shape) > 8 * forward_macs(small, shape)


def test_benchmark_families_have_the_textbook_parameter_counts():
    mlp = make_classifier("mlp", 32, 1, 10, 28)
    logreg = make_classifier("logreg", 32, 1, 10, 28)  # width does not apply
    assert sum(p.numel() for p in mlp.parameters()) == 784 * 32 + 32 + 32 * 10 + 10
    assert sum(p.numel() for p in logreg.parameters()) == 784 * 10 + 10
    assert forward_macs(mlp, (1, 28, 28)) == 784 * 32 + 32 * 10 and forward_macs(logreg, (1, 28, 28)) == 7840
    assert mlp(torch.zeros((3, 1, 28, 28))).shape == (3, 10)


def test_unknown_family_is_a_config_error():
    with pytest.raises(ConfigError, match="not a vision family"):
        make_classifier("vit", 1, 1, 10, 14)


def _cifar_sample(root, n_train=10, n_test=4):
    from proxyscale.data.images import write_cifar10
    from proxyscale.data.samples import mnist_as_cifar

    x, y = load_mnist(DATA / "vision/t10k-images-idx3-ubyte.gz", DATA / "vision/t10k-labels-idx1-ubyte.gz")
    x = mnist_as_cifar(x[: n_train + n_test])
    write_cifar10(root, {"train": (x[:n_train], y[:n_train]), "test": (x[n_train:], y[n_train : n_train + n_test])})
    return x, y[: n_train + n_test]


def test_cifar10_batches_read_back_as_written(tmp_path):
    from proxyscale.data.images import load_images

    x, y = _cifar_sample(tmp_path)
    assert x.shape == (14, 3, 32, 32) and (x[:, 0] == x[:, 2]).all() and not x[:, :, :2].any()  # padded digits
    images, labels = load_images({"kind": "cifar10", "root": str(tmp_path), "split": "train"})
    assert images.dtype == np.uint8 and np.array_equal(images, x[:10]) and np.array_equal(labels, y[:10])
    test_images, _ = load_images({"kind": "cifar10", "root": str(tmp_path), "split": "test"})
    assert np.array_equal(test_images, x[10:])


def test_cifar10_reader_matches_torchvision(tmp_path, monkeypatch):
    try:
        from torchvision import datasets
    except Exception as exc:  # absent, or a build whose operators do not load against this torch
        pytest.skip(f"torchvision unusable here ({type(exc).__name__}: {exc})")
    from proxyscale.data.images import load_cifar10

    _cifar_sample(tmp_path)
    # torchvision checks the official files' MD5 sums; the sample is the same format, not the same bytes
    monkeypatch.setattr(datasets.CIFAR10, "_check_integrity", lambda self: True)
    for train in (True, False):
        ds = datasets.CIFAR10(str(tmp_path), train=train, download=False)
        images, labels = load_cifar10(tmp_path, train)
        assert np.array_equal(images, ds.data.transpose(0, 3, 1, 2)) and labels.tolist() == ds.targets


def test_cifar10_errors_name_the_file(tmp_path):
    from proxyscale.data.images import load_cifar10

    with pytest.raises(DataError, match="data_batch_1: no such CIFAR-10 batch"):
        load_cifar10(tmp_path, True)
    _cifar_sample(tmp_path)
    (tmp_path / "cifar-10-batches-py/test_batch").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="test_batch: not a CIFAR-10 python batch"):
        load_cifar10(tmp_path, False)
