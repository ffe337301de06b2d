"""Training on a fixed set of examples, for the datamodel experiments.

Every model of the datamodel experiments (the M checkpoints of each size, the reference retrained on
each LDS subset or selection) is trained here with one recipe: AdamW, linear warmup then cosine decay
(:mod:`proxyscale.training.recipe`), ``passes`` passes over the given examples in a seeded order.
Passes may be fractional: a language model trains on a Chinchilla budget of windows
(:mod:`proxyscale.datamodels.budget`), which need not be a whole number of passes over its examples.
The seed fixes initialisation and order, so a model is a function of (size, examples, passes, seed).
``task`` is any object with ``make_model``, ``to_batch``, ``loss`` and ``flops_per_example``
(:mod:`proxyscale.datamodels.tasks`).
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from proxyscale.device import autocast
from proxyscale.models import count_params
from proxyscale.training.distributed import SINGLE, Group
from proxyscale.training.recipe import Recipe, lr_at, make_optimizer, optimizer_step


def fit(
    task,
    spec: dict,
    inputs: np.ndarray,
    labels: np.ndarray,
    indices: np.ndarray,
    recipe: Recipe,
    passes: float,
    seed: int,
    device: torch.device,
    desc: str = "fit",
    group: Group = SINGLE,
) -> tuple[nn.Module, dict]:
    """Train a fresh ``task.make_model(spec)`` on ``round(passes x len(indices))`` examples of
    ``inputs[indices]``, taken from successive seeded permutations; return it (eval mode) and a summary.
    In a group of processes (:mod:`proxyscale.training.distributed`) each trains on its share of every
    batch's examples (exact for losses that are means over examples)."""
    torch.manual_seed(seed)
    model = task.make_model(spec).to(device)
    trained = group.wrap(model, device)
    order = np.random.default_rng(seed)
    indices = np.asarray(indices)
    seen = max(1, round(passes * len(indices)))
    batches = []  # batches stay within a pass, as in epoch training
    for start in range(0, seen, len(indices)):
        perm = indices[order.permutation(len(indices))][: seen - start]
        batches += [perm[i : i + recipe.batch_size] for i in range(0, len(perm), recipe.batch_size)]
    total = len(batches)
    opt = make_optimizer(model, recipe)
    start, losses = time.perf_counter(), []
    model.train()
    for step, idx in enumerate(tqdm(batches, desc=desc, mininterval=5, ascii=True, disable=not group.is_main)):
        local, weight = idx[group.share(len(idx))], group.loss_weight(len(idx))
        if not len(local):  # a last batch smaller than the group: this rank still joins the gradient average
            local = idx[:1]
        batch = task.to_batch(inputs[local], labels[local], device)
        with autocast(device):
            loss = task.loss(trained, batch) * weight
        optimizer_step(trained, opt, loss, lr_at(step, total, recipe), recipe.grad_clip, f"{desc} step {step}")
        losses.append(loss.item())
    flops_forward = task.flops_per_example(model.cpu())
    model.to(device)
    summary = {
        "params": count_params(model),
        "examples": int(len(indices)),
        "examples_seen": seen,
        "repetition": seen / len(indices),  # passes over the examples
        "steps": total,
        "seed": seed,
        "forward_flops_per_example": flops_forward,
        "flops": 3.0 * flops_forward * seen,  # forward + backward (2x forward)
        "final_loss": group.mean(float(np.mean(losses[-math.ceil(len(indices) / recipe.batch_size) :]))),
        "wall_seconds": time.perf_counter() - start,
        "device": str(device),
        "processes": group.world,
    }
    return model.eval(), summary
