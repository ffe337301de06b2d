"""Snakemake entry: raw TRAK scores of one checkpoint for the target examples, and its Q -> .npz."""

import logging
import time

import numpy as np

from proxyscale import trak_store
from proxyscale.attribution_data import load_dataset
from proxyscale.device import resolve_device
from proxyscale.fit import load_model
from proxyscale.io import atomic_path
from proxyscale.runner import run_job
from proxyscale.tasks import batches


def main():
    smk = snakemake  # noqa: F821 (injected by Snakemake)
    p = smk.params
    device = resolve_device(p.device)
    start = time.perf_counter()
    model, task, _ = load_model(smk.input.model, device)
    arrays, _ = load_dataset(smk.input.data)
    x, y = arrays["target_inputs"], arrays["target_labels"]
    scores, q = trak_store.score(
        model, task.modelout, lambda: batches(task, x, y, np.arange(len(x)), p.batch_size, device),
        len(x), smk.input.store, device,
    )
    wall = time.perf_counter() - start
    logging.info("scores %s in %.1fs", scores.shape, wall)
    with atomic_path(smk.output[0]) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, scores=scores.astype(np.float32), q=q, wall_seconds=wall)


run_job(snakemake, main)  # noqa: F821
