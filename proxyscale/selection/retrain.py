"""What a selection is worth: the reference model retrained on it, scored on the held-out examples.

The reference size is trained from scratch (:mod:`proxyscale.training.fit`, the proxies' recipe) on
the selected pool examples with several seeds, for its Chinchilla budget
(:mod:`proxyscale.datamodels.budget`; one pass when the selection holds exactly that budget, its
default size), and each model's per-example loss and token accuracy on every target task's holdout
part are recorded. A selection also becomes a training distribution of the
scale-correlation experiment as one token stream: its windows, concatenated.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from proxyscale.data.tokenizer import token_dtype
from proxyscale.datamodels.tasks import make_task, token_metrics
from proxyscale.io import npy_writer
from proxyscale.training.distributed import SINGLE, Group
from proxyscale.training.fit import fit
from proxyscale.training.recipe import Recipe
from proxyscale.training.resume import NEVER


def retrain(
    data,
    size: dict,
    recipe: Recipe,
    passes: float,
    indices: np.ndarray,
    seeds: list[int],
    batch_size: int,
    device,
    desc: str = "retrain",
    group: Group = SINGLE,
    resume_for=lambda seed: NEVER,
    peak_flops: float | None = None,
) -> pd.DataFrame:
    """One row per (seed, holdout example): its target task, example id, loss and token accuracy,
    with the run's training FLOPs and wall time. ``resume_for(seed)`` is each seed's
    :class:`~proxyscale.training.resume.Resume`."""
    task = make_task(data.task)
    names = np.asarray(data.task["targets"])
    train, holdout = data.train, data.part("holdout")
    frames = []
    for seed in seeds:
        model, meta = fit(
            task,
            size,
            train,
            indices,
            recipe,
            passes,
            seed,
            device,
            desc=f"{desc} seed {seed}",
            group=group,
            resume=resume_for(seed),
            peak_flops=peak_flops,
        )
        loss, accuracy = token_metrics(task, model, holdout, batch_size, device)
        frames.append(
            pd.DataFrame(
                {
                    "seed": seed,
                    "holdout_task": names[data["holdout_task"]],
                    "example_id": data["holdout_origin"],
                    "loss": loss,
                    "token_accuracy": accuracy,
                    "train_flops": meta["flops"],
                    "train_seconds": meta["wall_seconds"],
                    "examples": meta["examples"],
                    "repetition": meta["repetition"],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def write_selected_stream(data, indices: np.ndarray, path, chunk: int = 4096) -> int:
    """Write the selected pool windows as one token stream (``.npy`` in the shards' token type), in pool
    order, ``chunk`` windows at a time; returns its length in tokens."""
    with npy_writer(path, token_dtype(data.task["vocab_size"])) as append:
        order = np.sort(indices)
        for start in range(0, len(order), chunk):
            append(data.train.tokens(order[start : start + chunk]).reshape(-1))
    return len(indices) * data.train.window
