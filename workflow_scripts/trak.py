"""Snakemake entry: one checkpoint's TRAK store (featurized and finalized; an interrupted run resumes)
and its raw scores for the target examples with Q -> .npz."""

import logging
import time

import numpy as np

from proxyscale.datamodels import store
from proxyscale.datamodels.dataset import load_dataset
from proxyscale.datamodels.examples import Arrays
from proxyscale.datamodels.projectors import checkpoint_seed
from proxyscale.datamodels.tasks import batches, load_model
from proxyscale.device import resolve_device
from proxyscale.io import save_npz
from proxyscale.runner import run_job


def main():
    smk = snakemake  # noqa: F821 (injected by Snakemake)
    p, trak = smk.params, smk.params.trak
    device = resolve_device(p.device)
    model, task, _ = load_model(smk.input.model, device)
    arrays, _ = load_dataset(smk.input.data)
    train = Arrays(arrays["train_inputs"], arrays["train_labels"])
    seed = checkpoint_seed(trak["projector_seed"], int(smk.wildcards.ckpt))  # a new projection per checkpoint
    summary = store.featurize(
        model,
        task.modelout,
        lambda: batches(task, train, np.arange(len(train)), trak["batch_size"], device),
        len(train),
        smk.output.store,
        p.work_dir,
        trak["proj_dim"],
        device,
        seed=seed,
        lambda_reg=trak["lambda_reg"],
        projector=trak["projector"],
        fingerprint=store.fingerprint([smk.input.model, smk.input.data], {**trak, "seed": seed}),
    )
    logging.info("store %s: %s", smk.output.store, summary)
    start = time.perf_counter()
    targets = Arrays(arrays["target_inputs"], arrays["target_labels"])
    scores, q = store.score(
        model,
        task.modelout,
        lambda: batches(task, targets, np.arange(len(targets)), trak["batch_size"], device),
        len(targets),
        smk.output.store,
        device,
    )
    wall = time.perf_counter() - start
    logging.info("scores %s in %.1fs", scores.shape, wall)
    save_npz(smk.output.scores, scores=scores.astype(np.float32), q=q, wall_seconds=wall)


run_job(snakemake, main)  # noqa: F821
