"""Snakemake entry: featurize and finalize one checkpoint's TRAK store (resumes an interrupted run)."""

import logging

import numpy as np

from proxyscale import trak_store
from proxyscale.attribution_data import load_dataset
from proxyscale.device import resolve_device
from proxyscale.fit import load_model
from proxyscale.runner import run_job
from proxyscale.tasks import batches


def main():
    smk = snakemake  # noqa: F821 (injected by Snakemake)
    p = smk.params
    device = resolve_device(p.device)
    model, task, _ = load_model(smk.input.model, device)
    arrays, _ = load_dataset(smk.input.data)
    x, y = arrays["train_inputs"], arrays["train_labels"]
    summary = trak_store.featurize(
        model, task.modelout, lambda: batches(task, x, y, np.arange(len(x)), p.trak["batch_size"], device),
        len(x), smk.output[0], p.work_dir, p.trak["proj_dim"], device,
        seed=p.trak["projector_seed"], lambda_reg=p.trak["lambda_reg"],
        fingerprint=trak_store.fingerprint([smk.input.model, smk.input.data], dict(p.trak)),
    )
    logging.info("store %s: %s", smk.output[0], summary)


run_job(snakemake, main)  # noqa: F821
