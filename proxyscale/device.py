"""Device choice (``auto`` means CUDA when present, else CPU), mixed precision, host-to-device copies
(from pinned memory, with the next batch read on a background thread: :class:`Prefetch`), and how fast
a run went against the device's peak.

Model FLOPs utilisation (MFU) is the run's model FLOPs (6 x params x tokens for training) over its wall
time, over the peak dense bf16 FLOP/s of the devices it ran on: the figure llm-foundry and nanoGPT
report. The peaks come from the vendors' data sheets for the GPU names below (without sparsity),
or from config ``peak_tflops`` for any other device; the CPU has no entry, so a CPU run's MFU is
reported only when ``peak_tflops`` is set (None otherwise).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

import torch

from proxyscale.errors import ConfigError

# Substrings of torch.cuda.get_device_name() -> peak dense bf16 TFLOP/s (tensor cores, no sparsity).
# More specific names come first: the first match wins.
PEAK_BF16_TFLOPS = (
    ("GH200", 989.0),
    ("H200 NVL", 835.0),
    ("H200", 989.0),
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.0),  # SXM
    ("H800", 989.0),
    ("B200", 2250.0),
    ("A100", 312.0),
    ("A800", 312.0),
    ("L40S", 362.0),
    ("L40", 181.0),
    ("L4", 121.0),
    ("A6000", 155.0),
    ("RTX 4090", 165.0),
    ("RTX 3090", 71.0),
    ("V100", 125.0),  # fp16: V100 has no bf16
)


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device '{name}' was asked for but torch sees no CUDA device (use 'auto' or 'cpu')")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device '{name}' is not a torch device name (auto, cpu, cuda, cuda:N)") from None


def autocast(device: torch.device):
    """bf16 mixed precision on CUDA; a no-op context on CPU."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


@contextlib.contextmanager
def full_fp32() -> Iterator[None]:
    """fp32 matmuls and convolutions on a GPU (no TF32, which cuDNN's convolutions use by default), for work
    whose summary says it ran in fp32; the previous settings come back after."""
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def to_device(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``batch`` on ``device``; to a GPU from pinned memory without blocking, so the host prepares the
    next batch while the GPU computes."""
    if device.type != "cuda":
        return batch.to(device)
    return batch.pin_memory().to(device, non_blocking=True)


def pinned(tensors: tuple[torch.Tensor, ...], device: torch.device) -> tuple[torch.Tensor, ...]:
    """Host tensors in page-locked memory when they are bound for a GPU (so their copy need not block)."""
    return tuple(t.pin_memory() for t in tensors) if device.type == "cuda" else tensors


class Prefetch:
    """``make(key)`` for every key in order, each made on a background thread while the consumer works on
    the one before (``ahead``; made on demand otherwise): a training step's next batch is read from disk
    and laid out in pinned memory while the device computes the current one. ``waited`` accumulates the
    seconds the consumer spent waiting for an item, the time a device would sit idle for want of data."""

    def __init__(self, make: Callable, keys: Iterable, ahead: bool = True):
        self.make, self.keys, self.ahead = make, keys, ahead
        self.waited = 0.0

    def __iter__(self) -> Iterator:
        if not self.ahead:
            for key in self.keys:
                start = time.perf_counter()
                item = self.make(key)
                self.waited += time.perf_counter() - start
                yield item
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch") as pool:
            pending = None
            for key in self.keys:
                following = pool.submit(self.make, key)
                if pending is not None:
                    yield self._result(pending)
                pending = following
            if pending is not None:
                yield self._result(pending)

    def _result(self, future):
        start = time.perf_counter()
        item = future.result()
        self.waited += time.perf_counter() - start
        return item


def peak_flops(device: torch.device, peak_tflops: float | None = None) -> float | None:
    """Peak dense bf16 FLOP/s of one ``device``: ``peak_tflops`` when given, else the table's entry for
    the GPU's name; None when unknown (a CPU, an unlisted GPU)."""
    if peak_tflops is not None:
        return peak_tflops * 1e12
    if device.type != "cuda":
        return None
    return gpu_peak_flops(torch.cuda.get_device_name(device))


def gpu_peak_flops(name: str) -> float | None:
    """The table's peak for a GPU name (``torch.cuda.get_device_name``), None when unlisted."""
    for key, tflops in PEAK_BF16_TFLOPS:
        if key in name:
            return tflops * 1e12
    return None


def mfu(flops: float, seconds: float, devices: int, peak: float | None) -> float | None:
    """Model FLOPs utilisation: ``flops`` over ``seconds`` over ``devices`` x ``peak`` (None when the peak
    is unknown)."""
    return flops / max(seconds, 1e-9) / (devices * peak) if peak else None
