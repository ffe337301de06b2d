"""The optimisation recipe every model here is trained with: AdamW, linear warmup then cosine decay,
gradient clipping, and a clear error when the loss diverges.

A recipe's ``batch_size`` is the global batch the optimiser steps on; ``micro_batch_size`` is how many
of a process's rows go through one forward and backward pass (gradients accumulate over them; None:
all at once), and ``activation_checkpointing`` recomputes each block's activations in the backward
pass. Neither changes what is computed, only the memory it takes (:mod:`proxyscale.training.memory`
chooses them for ``auto``). ``attention`` (a GPT's ALiBi implementation, :mod:`proxyscale.models.gpt`)
and ``compile`` (``torch.compile`` the model) change only how fast it is computed, up to float rounding."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.optim.adamw import adamw

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
    micro_batch_size: int | None = None
    activation_checkpointing: bool = False
    attention: str = "sdpa"
    compile: bool = False

    @classmethod
    def from_size(cls, size: dict, training: dict, **memory) -> Recipe:
        """The recipe of a config size (its ``batch_size`` and ``lr``) under a ``training:`` block;
        ``memory`` sets ``micro_batch_size`` and ``activation_checkpointing`` once they are resolved."""
        return cls(batch_size=size["batch_size"], lr=size["lr"], **training, **memory)


def lr_at(step: int, total_steps: int, recipe: Recipe) -> float:
    """Learning rate at ``step`` (0-based): linear warmup, then cosine decay to ``min_lr_frac``."""
    warmup = max(1, round(recipe.warmup_frac * total_steps))
    if step < warmup:
        return recipe.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total_steps - warmup)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return recipe.lr * (recipe.min_lr_frac + (1 - recipe.min_lr_frac) * cosine)


class AdamW:
    """AdamW through torch's functional fused kernel (``torch.optim.adamw.adamw``), with two groups.

    It computes exactly what ``torch.optim.AdamW(fused=True)`` computes (a test compares them step by
    step). The ``torch.optim.Optimizer`` class is not used because constructing one imports TorchDynamo
    (its methods are wrapped in ``torch._disable_dynamo``), which costs every training job about
    1.5 s of start-up, more than many of the default config's runs take to train.
    """

    def __init__(self, groups: list[dict], lr: float, betas: tuple[float, float], eps: float = 1e-8):
        self.param_groups = [{"lr": lr, **g, "params": list(g["params"])} for g in groups]
        self.betas, self.eps = betas, eps
        self.state = [
            [
                (torch.zeros_like(p), torch.zeros_like(p), torch.zeros((), dtype=torch.float32, device=p.device))
                for p in g["params"]
            ]
            for g in self.param_groups
        ]

    def state_dict(self) -> dict:
        """The moments and step counts of every parameter, in parameter order (for resuming)."""
        return {"state": [[list(s) for s in group] for group in self.state]}

    def load_state_dict(self, saved: dict) -> None:
        for group, saved_group in zip(self.state, saved["state"]):
            for mine, theirs in zip(group, saved_group):
                for tensor, value in zip(mine, theirs):
                    tensor.copy_(value)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop the gradients (set them to None, as torch's optimizers do by default), or zero them in place
        (``set_to_none`` false: DDP's gradients are views of its communication buckets, and must stay so)."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        for group, state in zip(self.param_groups, self.state):
            live = [(p, s) for p, s in zip(group["params"], state) if p.grad is not None]
            if not live:
                continue
            params = [p for p, _ in live]
            adamw(
                params,
                [p.grad for p in params],
                [s[0] for _, s in live],
                [s[1] for _, s in live],
                [],
                [s[2] for _, s in live],
                fused=True,
                amsgrad=False,
                beta1=self.betas[0],
                beta2=self.betas[1],
                lr=group["lr"],
                weight_decay=group["weight_decay"],
                eps=self.eps,
                maximize=False,
            )


def make_optimizer(model: torch.nn.Module, recipe: Recipe) -> AdamW:
    """AdamW with weight decay on matrices only (not biases, norms or other vectors)."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return AdamW(
        [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=recipe.lr,
        betas=(recipe.beta1, recipe.beta2),
    )


def update(model: torch.nn.Module, opt: AdamW, lr: float, grad_clip: float, set_to_none: bool = True) -> None:
    """One update at learning rate ``lr`` from the gradients accumulated so far, clipped; then clear them
    (:meth:`AdamW.zero_grad`). Nothing here reads a value back to the host, so a GPU never waits on it."""
    for group in opt.param_groups:
        group["lr"] = lr
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    opt.step()
    opt.zero_grad(set_to_none)


def check_finite(loss: float, lr: float, where: str) -> None:
    """A loss that is no longer finite is one clear error naming the run, the step and the learning rate."""
    if not math.isfinite(loss):
        raise TrainingError(f"{where}: loss became {loss} at learning rate {lr:g}; lower the size's lr")
