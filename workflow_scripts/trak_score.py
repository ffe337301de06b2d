"""Snakemake entry: raw TRAK scores of one checkpoint for the target examples, and its Q -> .npz."""

import logging
import time

import numpy as np

from proxyscale.datamodels import store
from proxyscale.datamodels.dataset import load_dataset
from proxyscale.datamodels.tasks import batches, load_model
from proxyscale.device import resolve_device
from proxyscale.io import save_npz
from proxyscale.runner import run_job


def main():
    smk = snakemake  # noqa: F821 (injected by Snakemake)
    p = smk.params
    device = resolve_device(p.device)
    start = time.perf_counter()
    model, task, _ = load_model(smk.input.model, device)
    arrays, _ = load_dataset(smk.input.data)
    x, y = arrays["target_inputs"], arrays["target_labels"]
    scores, q = store.score(
        model,
        task.modelout,
        lambda: batches(task, x, y, np.arange(len(x)), p.batch_size, device),
        len(x),
        smk.input.store,
        device,
    )
    wall = time.perf_counter() - start
    logging.info("scores %s in %.1fs", scores.shape, wall)
    save_npz(smk.output[0], scores=scores.astype(np.float32), q=q, wall_seconds=wall)


run_job(snakemake, main)  # noqa: F821
