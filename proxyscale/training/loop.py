"""One optimiser step on a global batch, taken in micro-batches: what both training loops share.

A step's rows (this process's share of the global batch, :mod:`proxyscale.training.distributed`) go
through the model ``recipe.micro_batch_size`` at a time; each micro-batch's summed loss is divided by
the global batch's count of loss terms (and multiplied by the process count, which DDP's gradient
average divides out), so the accumulated gradient is the global batch's mean-loss gradient whatever the
micro-batch size. DDP all-reduces the gradients only after the last micro-batch (``no_sync``); its
gradients stay views of its communication buckets (one copy, as the memory model counts): a first synced
backward of a zero loss makes them so before the first step, and they are zeroed in place between steps.

Nothing in a step reads a value back to the host: the losses accumulate on the device, and
:meth:`Steps.read` (called every ``log_every`` steps) reads their mean, averages it over the processes
and checks it is finite, so a GPU is never stalled by the bookkeeping.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from proxyscale.errors import ConfigError
from proxyscale.training.distributed import SINGLE, Group
from proxyscale.training.recipe import AdamW, Recipe, check_finite, update


def prepare(model: torch.nn.Module, recipe: Recipe, device: torch.device, group: Group = SINGLE) -> torch.nn.Module:
    """The module a run trains: a fresh model with a recipe's choices of how to compute (activation
    checkpointing and the attention implementation of GPTs), DDP-wrapped in a group of processes
    (:meth:`Group.wrap`), then ``torch.compile``-d, wrapper and all (in place: the model's state_dict
    keeps its names), so that compiled DDP overlaps each bucket's all-reduce with the rest of the
    backward pass (a model compiled before the wrap hides its gradients' readiness from DDP until the
    whole backward has run)."""
    if recipe.attention == "flex" and device.type != "cuda":
        raise ConfigError("training.attention: flex trains on GPUs only (FlexAttention has no CPU backward); use sdpa")
    if hasattr(model, "checkpoint_blocks"):
        model.checkpoint_blocks = recipe.activation_checkpointing
        model.attention = recipe.attention
    trained = group.wrap(model, device)
    if recipe.compile:
        trained.compile()
    return trained


def micro_slices(rows: int, micro: int | None) -> list[slice]:
    """``rows`` cut into consecutive slices of at most ``micro`` rows (one slice when ``micro`` is None), as
    even as they can be: as few slices as ``micro`` allows, of two sizes at most (q and q + 1 rows), so a
    compiled model sees at most two micro-batch shapes (the largest that fits plus a remainder could
    leave one row in the last slice)."""
    size = rows if micro is None else max(1, micro)
    count = max(1, -(-rows // size))
    q, r = divmod(rows, count)
    bounds = [i * q + min(i, r) for i in range(count + 1)]  # the r slices of q + 1 rows first
    return [slice(a, b) for a, b in zip(bounds, bounds[1:])]


class Steps:
    """Optimiser steps of one training run, and the device-side sum of their losses since the last read."""

    def __init__(self, trained: torch.nn.Module, opt: AdamW, recipe: Recipe, group: Group, device, where: str):
        self.trained, self.opt, self.recipe, self.group, self.where = trained, opt, recipe, group, where
        self.window = torch.zeros((), dtype=torch.float64, device=device)
        self.window_steps = 0
        self.primed = group.world == 1

    def step(self, micro_losses: Sequence[Callable[[], torch.Tensor]], lr: float) -> torch.Tensor:
        """Backward through every micro-batch's loss (each a callable giving the scaled summed loss), then
        one update at ``lr``; returns this rank's loss of the step, on the device."""
        if not self.primed:  # DDP: gradients become views of its buckets only in a synced backward
            (micro_losses[0]() * 0.0).backward()
            self.primed = True
        total = None
        last = len(micro_losses) - 1
        for i, loss_of in enumerate(micro_losses):
            with self.group.no_sync(self.trained, sync=i == last):
                loss = loss_of()
                loss.backward()
            total = loss.detach() if total is None else total + loss.detach()
        update(self.trained, self.opt, lr, self.recipe.grad_clip, set_to_none=self.group.world == 1)
        self.window += total
        self.window_steps += 1
        return total

    def read(self, step: int, lr: float) -> float:
        """The mean loss per step since the last read, averaged over the group (a host sync); a loss that
        is no longer finite is a :class:`TrainingError` naming ``step``."""
        value = self.group.mean(self.window / max(1, self.window_steps))
        check_finite(value, lr, f"{self.where} step {step}")
        self.window.zero_()
        self.window_steps = 0
        return value

    def state(self) -> dict:
        """What resuming needs (every rank's loss window: each rank sums its own rows' losses)."""
        return {"windows": self.group.gather(self.window), "window_steps": self.window_steps,
                "opt": self.opt.state_dict()}  # fmt: skip

    def restore(self, state: dict) -> None:
        self.window.copy_(self.group.restored(state["windows"]))
        self.window_steps = state["window_steps"]
        self.opt.load_state_dict(state["opt"])
