"""Training on a fixed set of examples, for the datamodel experiments.

Every model of the datamodel experiments (the M checkpoints of each size, the reference retrained on
each LDS subset or selection) is trained here with one recipe: AdamW, linear warmup then cosine decay
(:mod:`proxyscale.training.recipe`), ``passes`` passes over the given examples in a seeded order.
Passes may be fractional: a language model trains on a Chinchilla budget of windows
(:mod:`proxyscale.datamodels.budget`), which need not be a whole number of passes over its examples.
The seed fixes initialisation and order, so a model is a function of (size, examples, passes, seed).

``task`` is any object with ``make_model``, ``host_batch`` and ``device_batch`` (a batch's tensors on
the host, then on the device), ``loss_sum`` (the summed loss of a batch),
``loss_terms`` (how many terms a batch's labels sum over) and ``flops_per_example``
(:mod:`proxyscale.datamodels.tasks`); ``examples`` any object with ``take(rows)`` (inputs and labels of
those rows) and ``labels(rows)`` (:mod:`proxyscale.datamodels.examples`), so only the rows of a batch
are ever read, each step's on a background thread while the step before computes
(:class:`proxyscale.device.Prefetch`), into pinned memory on a GPU, whence it is copied without
blocking. A batch is taken in micro-batches (:mod:`proxyscale.training.loop`), and a run resumes from
its last saved state (:mod:`proxyscale.training.resume`).
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from proxyscale.device import Prefetch, autocast, mfu, pinned
from proxyscale.models import built_parameters
from proxyscale.training.distributed import SINGLE, Group
from proxyscale.training.loop import Steps, micro_slices, prepare
from proxyscale.training.recipe import Recipe, lr_at, make_optimizer
from proxyscale.training.resume import NEVER, Resume


def schedule(indices: np.ndarray, passes: float, batch_size: int, seed: int) -> list[np.ndarray]:
    """The batches of ``round(passes x len(indices))`` examples: successive seeded permutations of
    ``indices`` (each pass sees every example once, the last pass a prefix), cut into batches that stay
    within a pass, as in epoch training."""
    order = np.random.default_rng(seed)
    indices = np.asarray(indices)
    seen = max(1, round(passes * len(indices)))
    batches = []
    for start in range(0, seen, len(indices)):
        perm = indices[order.permutation(len(indices))][: seen - start]
        batches += [perm[i : i + batch_size] for i in range(0, len(perm), batch_size)]
    return batches


def fit(
    task,
    spec: dict,
    examples,
    indices: np.ndarray,
    recipe: Recipe,
    passes: float,
    seed: int,
    device: torch.device,
    desc: str = "fit",
    group: Group = SINGLE,
    resume: Resume = NEVER,
    peak_flops: float | None = None,
) -> tuple[nn.Module, dict]:
    """Train a fresh ``task.make_model(spec)`` on ``round(passes x len(indices))`` of the ``examples`` at
    ``indices`` (:func:`schedule`); return it (eval mode) and a summary. In a group of processes
    (:mod:`proxyscale.training.distributed`) each trains on its share of every batch's examples."""
    torch.manual_seed(seed)
    model = task.make_model(spec).to(device)
    trained = prepare(model, recipe, device, group)
    batches = schedule(indices, passes, recipe.batch_size, seed)
    total, seen = len(batches), sum(len(b) for b in batches)
    last_pass = min(total, math.ceil(len(indices) / recipe.batch_size))  # the steps final_loss averages
    runner = Steps(trained, make_optimizer(model, recipe), recipe, group, device, desc)
    tail = torch.zeros((), dtype=torch.float64, device=device)
    first, elapsed = 0, 0.0
    if (saved := resume.load()) is not None:
        model.load_state_dict(saved["model"])
        runner.restore(saved["steps"])
        tail.copy_(group.restored(saved["tails"]))
        first, elapsed = saved["step"], saved["seconds"]
        del saved  # copied into the live tensors: nothing of it stays for the run

    def state(step: int) -> dict:
        seconds = elapsed + time.perf_counter() - start
        return {"model": model.state_dict(), "steps": runner.state(), "tails": group.gather(tail), "step": step,
                "seconds": seconds}  # fmt: skip

    def local_rows(step: int) -> tuple[np.ndarray, bool]:
        """This rank's rows of a step's batch; a last batch smaller than the group: this rank still joins
        the average, with a row whose loss counts zero times."""
        idx = batches[step]
        local = idx[group.share(len(idx))]
        return (local, False) if len(local) else (idx[:1], True)

    def read(step: int) -> tuple:
        """A step's rows, read and laid out on the host (on the prefetch thread)."""
        return pinned(task.host_batch(*examples.take(local_rows(step)[0])), device)

    def micro_loss(host: tuple, part: slice, divisor: float, joins_only: bool):
        def loss() -> torch.Tensor:
            batch = task.device_batch(tuple(t[part] for t in host), device)
            with autocast(device):
                value = task.loss_sum(trained, batch) / divisor
            return value * 0.0 if joins_only else value

        return loss

    start = time.perf_counter()
    model.train()
    bar = tqdm(range(first, total), desc=desc, mininterval=5, ascii=True, disable=not group.is_main, initial=first,
               total=total)  # fmt: skip
    prefetched = Prefetch(read, range(first, total), ahead=device.type == "cuda")  # a CPU computes and reads alike
    for step, host in zip(bar, prefetched):
        local, joins_only = local_rows(step)
        divisor = group.loss_divisor(task.loss_terms(examples.labels(batches[step])))
        lr = lr_at(step, total, recipe)
        parts = micro_slices(len(local), recipe.micro_batch_size)
        loss = runner.step([micro_loss(host, part, divisor, joins_only) for part in parts], lr)
        if step >= total - last_pass:
            tail += loss
        if (step + 1) % recipe.log_every == 0 or step + 1 == total:
            runner.read(step, lr)
        if step + 1 < total:
            resume.poll(step + 1, state)
    wall = elapsed + time.perf_counter() - start
    flops_forward = task.flops_per_example(model)
    flops = 3.0 * flops_forward * seen  # forward + backward (2x forward)
    summary = {
        "params": built_parameters(model),
        "examples": int(len(indices)),
        "examples_seen": seen,
        "repetition": seen / len(indices),  # passes over the examples
        "steps": total,
        "seed": seed,
        "forward_flops_per_example": flops_forward,
        "flops": flops,
        "final_loss": group.mean(tail / last_pass),
        "wall_seconds": wall,
        "examples_per_second": seen / wall / group.world,  # per device
        "input_wait_seconds": prefetched.waited,  # the step waited for its batch: a device idle for want of data
        "mfu": mfu(flops, wall, group.world, peak_flops),
        "device": str(device),
        "processes": group.world,
        "micro_batch_size": recipe.micro_batch_size,
        "activation_checkpointing": recipe.activation_checkpointing,
        "resumed_from_step": first or None,
    }
    return model.eval(), summary
