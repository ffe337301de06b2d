"""Device choice: ``auto`` means CUDA when present, else CPU."""

from __future__ import annotations

import torch

from proxyscale.errors import ConfigError


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
