"""Snakemake entry: retrain the reference on LDS subset {subset}; record its outputs on every target."""

import logging

import numpy as np

from proxyscale.attribution_data import load_dataset
from proxyscale.device import resolve_device
from proxyscale.fit import fit
from proxyscale.io import atomic_path
from proxyscale.lds import subset_mask, subset_seed
from proxyscale.runner import run_job
from proxyscale.tasks import make_task, outputs
from proxyscale.train import Recipe


def main():
    smk = snakemake  # noqa: F821 (injected by Snakemake)
    p = smk.params
    index = int(smk.wildcards.subset)
    device = resolve_device(p.device)
    arrays, task_spec = load_dataset(smk.input[0])
    task = make_task(task_spec)
    mask = subset_mask(len(arrays["train_inputs"]), p.alpha, p.seed, index)
    size = dict(p.size)
    recipe = Recipe(batch_size=size["batch_size"], lr=size["lr"], **p.training)
    model, meta = fit(
        task, size, arrays["train_inputs"], arrays["train_labels"], np.flatnonzero(mask), recipe, p.epochs,
        subset_seed(p.seed, index), device, desc=f"subset {index}",
    )
    out = outputs(task, model, arrays["target_inputs"], arrays["target_labels"], p.batch_size, device)
    logging.info("subset %d: %d examples, final loss %.3f, mean target output %.3f", index, mask.sum(), meta["final_loss"], out.mean())
    with atomic_path(smk.output[0]) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, mask=mask, outputs=out, flops=meta["flops"], wall_seconds=meta["wall_seconds"])


run_job(snakemake, main)  # noqa: F821
