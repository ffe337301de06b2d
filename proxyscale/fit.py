"""Epoch training on a fixed set of examples, for the attribution experiments.

Every attribution model (the M checkpoints of each size, and the reference retrained on each LDS
subset) is trained here with one recipe: AdamW, linear warmup then cosine decay (``train.lr_at``),
``epochs`` passes over the given examples in a seeded order. The seed fixes initialisation and order,
so a model is a function of (size, examples, seed).
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from proxyscale.device import autocast
from proxyscale.errors import DataError
from proxyscale.io import atomic_path
from proxyscale.tasks import count_params, make_task
from proxyscale.train import Recipe, lr_at, make_optimizer, optimizer_step


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
        "steps": total,
        "seed": seed,
        "forward_flops_per_example": flops_forward,
        "flops": 3.0 * flops_forward * epochs * len(indices),  # forward + backward (2x forward)
        "final_loss": float(np.mean(losses[-steps_per_epoch:])),
        "wall_seconds": time.perf_counter() - start,
        "device": str(device),
    }
    return model.eval(), summary


def save_model(model: nn.Module, task_spec: dict, size_spec: dict, meta: dict, path) -> None:
    """Checkpoint with everything needed to rebuild the model: the task and size specs."""
    with atomic_path(path) as tmp:
        torch.save({"task": task_spec, "size": size_spec, "state_dict": model.state_dict(), "meta": meta}, tmp)


def load_model(path, device: torch.device | str = "cpu") -> tuple[nn.Module, object, dict]:
    """Model (eval mode), its task and its training summary, from :func:`save_model`."""
    try:
        blob = torch.load(path, map_location=device, weights_only=True)
        task = make_task(blob["task"])
        model = task.make_model(blob["size"]).to(device)
        model.load_state_dict(blob["state_dict"])
    except (OSError, RuntimeError, KeyError, EOFError) as exc:
        raise DataError(f"{path}: not a proxyscale attribution checkpoint ({exc})") from None
    return model.eval(), task, blob["meta"]
