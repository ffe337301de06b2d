"""Checkpoint files: one writer and one reader for every model the workflow trains.

A checkpoint is a ``torch.save`` dict with the model's ``state_dict``, its training summary ``meta``
and whatever specs rebuild the model (``model_config`` for the GPT family of the correlation
experiment; ``task`` and ``size`` for the datamodel experiments' models). Files are written
atomically; a damaged or foreign file is a :class:`DataError` naming it and its maker.
"""

from __future__ import annotations

import torch

from proxyscale.artifacts import damaged, load_torch
from proxyscale.io import atomic_path


def save_checkpoint(path, model: torch.nn.Module, meta: dict, **specs) -> None:
    """Write ``specs``, the model's weights and ``meta`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        torch.save({**specs, "state_dict": model.state_dict(), "meta": meta}, tmp)


def read_checkpoint(path, device: torch.device | str = "cpu", needs: tuple[str, ...] = ()) -> dict:
    """The checkpoint dict at ``path`` (tensors on ``device``); ``needs`` lists keys it must hold."""
    blob = load_torch(path, device)
    missing = [k for k in ("state_dict", "meta", *needs) if k not in blob]
    if missing:
        raise damaged(path, f"not a proxyscale checkpoint of this kind: lacks {', '.join(missing)}")
    return blob


def checkpoint_meta(path) -> dict:
    """The training summary (params, tokens or examples, FLOPs, wall time, ...) of a checkpoint."""
    return read_checkpoint(path)["meta"]
