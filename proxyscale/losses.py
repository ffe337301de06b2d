"""The next-token loss and the margin, defined once for training, TRAK scoring and evaluation.

``token_nll`` is the cross-entropy of every next-token prediction; a loss over some positions only
(a continuation, a target's answer) is its ``masked_mean``. The flattened cross-entropy used here has
the same gradients, bit for bit, as PyTorch's mean-reduced cross-entropy over all positions.
``token_margins`` is log(p / (1 - p)) of each target, the output TRAK attributes (appendix A.2.7).

``per_token_head`` applies any of these to the output head's logits without ever holding the logits
of a whole batch: at the paper's scale (256 x 2,048 tokens x a 50K vocabulary) those would be 53 GB
in bf16 and twice that as the fp32 copy the loss needs. It projects hidden states onto the
vocabulary a chunk of tokens at a time, upcasts only that chunk to fp32, and, when gradients are
wanted, recomputes the chunk's logits in the backward pass (activation checkpointing of the chunk),
so autograd keeps the hidden states and one chunk's logits at a time. A batch whose logits fit in
one chunk is computed exactly as ``fn(hidden @ weight.T)``, with no recomputation.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

LOGIT_CHUNK_ENTRIES = 2**27
"""Logit entries (tokens x vocabulary) computed at once: 128M, 0.5 GB in fp32 (about 2,600 tokens of
a 50K vocabulary)."""


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


def token_hits(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Whether each target token is the model's most likely next token (greedy decoding reproduces it)."""
    return logits.argmax(-1) == targets


def token_nll_and_hit(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """:func:`token_nll` and :func:`token_hits` (as 0/1) of each token, stacked on a last dimension of 2."""
    return torch.stack([token_nll(logits, targets), token_hits(logits, targets).float()], -1)


def classification_margin(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """log(p / (1 - p)) of the true class: the output TRAK attributes for classifiers."""
    return token_margins(logits, labels)


PerToken = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _head_chunk(fn: PerToken, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return fn((hidden @ weight.T).float(), targets)


def per_token_head(
    fn: PerToken,
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    chunk_entries: int | None = None,
) -> torch.Tensor:
    """``fn(logits, targets)`` per token, for ``logits = hidden @ weight.T`` in fp32, ``chunk_entries``
    (default :data:`LOGIT_CHUNK_ENTRIES`) logits at a time (module docstring). ``hidden`` is (..., d),
    ``targets`` (...); the result has ``targets``' shape followed by whatever trailing dimensions ``fn``
    gives each token."""
    flat_h, flat_t = hidden.reshape(-1, hidden.shape[-1]), targets.reshape(-1)
    rows = max(1, (chunk_entries or LOGIT_CHUNK_ENTRIES) // weight.shape[0])
    if len(flat_t) <= rows:
        out = _head_chunk(fn, flat_h, weight, flat_t)
        return out.view(*targets.shape, *out.shape[1:])
    # checkpointing needs saved-tensor hooks, which torch.func's transforms (TRAK's per-example gradients) refuse
    wrapped = torch._C._functorch.is_functorch_wrapped_tensor(hidden)
    recompute = torch.is_grad_enabled() and (hidden.requires_grad or weight.requires_grad) and not wrapped
    pieces = []
    for start in range(0, len(flat_t), rows):
        args = (fn, flat_h[start : start + rows], weight, flat_t[start : start + rows])
        pieces.append(checkpoint(_head_chunk, *args, use_reentrant=False) if recompute else _head_chunk(*args))
    out = torch.cat(pieces)
    return out.view(*targets.shape, *out.shape[1:])
