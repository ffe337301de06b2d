"""Epoch training on a fixed set of examples, for the attribution experiments.

Every model of the datamodel experiments (the M checkpoints of each size, the reference retrained on
each LDS subset or selection) is trained here with one recipe: AdamW, linear warmup then cosine decay
(:mod:`proxyscale.training.recipe`),
``epochs`` passes over the given examples in a seeded order. The seed fixes initialisation and order,
so a model is a function of (size, examples, seed). ``task`` is any object with ``make_model``,
``to_batch``, ``loss`` and ``flops_per_example`` (:mod:`proxyscale.datamodels.tasks`).
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
from proxyscale.training.recipe import Recipe, lr_at, make_optimizer, optimizer_step


def fit(
    task,
    spec: dict,
    inputs: np.ndarray,
    labels: np.ndarray,
    indices: np.ndarray,
    recipe: Recipe,
    epochs: int,
    seed: int,
    device: torch.device,
    desc: str = "fit",
) -> tuple[nn.Module, dict]:
    """Train a fresh ``task.make_model(spec)`` on ``inputs[indices]``; return it (eval mode) and a summary."""
    torch.manual_seed(seed)
    model = task.make_model(spec).to(device)
    order = np.random.default_rng(seed)
    indices = np.asarray(indices)
    steps_per_epoch = math.ceil(len(indices) / recipe.batch_size)
    total = epochs * steps_per_epoch
    opt = make_optimizer(model, recipe)
    start, step, losses = time.perf_counter(), 0, []
    model.train()
    with tqdm(total=total, desc=desc, mininterval=5, ascii=True) as bar:
        for _ in range(epochs):
            perm = indices[order.permutation(len(indices))]
            for i in range(0, len(perm), recipe.batch_size):
                idx = perm[i : i + recipe.batch_size]
                batch = task.to_batch(inputs[idx], labels[idx], device)
                with autocast(device):
                    loss = task.loss(model, batch)
                optimizer_step(model, opt, loss, lr_at(step, total, recipe), recipe.grad_clip, f"{desc} step {step}")
                losses.append(loss.item())
                step += 1
                bar.update()
    flops_forward = task.flops_per_example(model.cpu())
    model.to(device)
    summary = {
        "params": count_params(model),
        "examples": int(len(indices)),
        "epochs": epochs,
        "repetition": float(epochs),  # every example is seen once per epoch
        "steps": total,
        "seed": seed,
        "forward_flops_per_example": flops_forward,
        "flops": 3.0 * flops_forward * epochs * len(indices),  # forward + backward (2x forward)
        "final_loss": float(np.mean(losses[-steps_per_epoch:])),
        "wall_seconds": time.perf_counter() - start,
        "device": str(device),
    }
    return model.eval(), summary
