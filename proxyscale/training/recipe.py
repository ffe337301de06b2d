"""The optimisation recipe every model here is trained with: AdamW, linear warmup then cosine decay,
gradient clipping, and a clear error when the loss diverges."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from proxyscale.errors import TrainingError


@dataclass(frozen=True)
class Recipe:
    """Optimisation settings of one training run."""

    batch_size: int
    lr: float
    warmup_frac: float = 0.05
    min_lr_frac: float = 0.1
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    log_every: int = 10

    @classmethod
    def from_size(cls, size: dict, training: dict) -> Recipe:
        """The recipe of a config size (its ``batch_size`` and ``lr``) under a ``training:`` block."""
        return cls(batch_size=size["batch_size"], lr=size["lr"], **training)


def lr_at(step: int, total_steps: int, recipe: Recipe) -> float:
    """Learning rate at ``step`` (0-based): linear warmup, then cosine decay to ``min_lr_frac``."""
    warmup = max(1, round(recipe.warmup_frac * total_steps))
    if step < warmup:
        return recipe.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total_steps - warmup)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return recipe.lr * (recipe.min_lr_frac + (1 - recipe.min_lr_frac) * cosine)


def make_optimizer(model: torch.nn.Module, recipe: Recipe) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not biases, norms or other vectors)."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=recipe.lr,
        betas=(recipe.beta1, recipe.beta2),
        fused=True,  # one kernel for all parameters, on CPU and CUDA alike
    )


def optimizer_step(
    model: torch.nn.Module, opt: torch.optim.Optimizer, loss: torch.Tensor, lr: float, grad_clip: float, where: str
) -> None:
    """One update at learning rate ``lr`` with gradient clipping; a non-finite loss is a clear error."""
    if not torch.isfinite(loss):
        raise TrainingError(f"{where}: loss became {loss.item()} at learning rate {lr:g}; lower the size's lr")
    for group in opt.param_groups:
        group["lr"] = lr
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    opt.step()
