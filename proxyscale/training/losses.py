"""The next-token loss and the margin, defined once for training, TRAK scoring and evaluation.

``token_nll`` is the cross-entropy of every next-token prediction; a loss over some positions only
(a continuation, a target's answer) is its ``masked_mean``. The flattened cross-entropy used here has
the same gradients, bit for bit, as PyTorch's mean-reduced cross-entropy over all positions.
``token_margins`` is log(p / (1 - p)) of each target, the output TRAK attributes (appendix A.2.7).
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


def token_margins(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log(p / (1 - p)) of each target token: its logit minus the logsumexp of all other logits."""
    correct = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    others = logits.scatter(-1, targets.unsqueeze(-1), float("-inf")).logsumexp(-1)
    return correct - others


def classification_margin(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """log(p / (1 - p)) of the true class: the output TRAK attributes for classifiers."""
    return token_margins(logits, labels)
