"""The next-token loss, defined once for training, TRAK scoring and evaluation.

``token_nll`` is the cross-entropy of every next-token prediction; a loss over some positions only
(a continuation, a target's answer) is its ``masked_mean``. The flattened cross-entropy used here has
the same gradients, bit for bit, as PyTorch's mean-reduced cross-entropy over all positions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def token_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of ``targets`` (batch, T) under ``logits`` (batch, T, vocab), per position."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none").view(
        targets.shape
    )


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` over the positions ``mask`` marks, per row (a row with none gives 0)."""
    weights = mask.to(values.dtype)
    return (values * weights).sum(-1) / weights.sum(-1).clamp(min=1)
