"""Snakemake entry: retrain the reference on one selection; per-example holdout loss -> parquet."""

import logging

import pandas as pd

from proxyscale.attribution_data import load_dataset
from proxyscale.device import resolve_device
from proxyscale.io import save_parquet
from proxyscale.runner import run_job
from proxyscale.selection import selected_indices
from proxyscale.selection_retrain import retrain
from proxyscale.train import Recipe


def main():
    smk = snakemake  # noqa: F821 (injected by Snakemake)
    p, w = smk.params, smk.wildcards
    arrays, task_spec = load_dataset(smk.input.data)
    indices = selected_indices(pd.read_parquet(smk.input.subset))
    size = dict(p.size)
    recipe = Recipe(batch_size=size["batch_size"], lr=size["lr"], **p.training)
    seeds = [p.seed + r for r in range(p.seeds)]
    frame = retrain(arrays, task_spec, size, recipe, p.epochs, indices, seeds, p.batch_size, resolve_device(p.device), desc=f"{w.target}/{w.method}")
    own = frame[frame["holdout_task"] == w.target]
    logging.info("%s/%s: %d examples, holdout loss on %s %.4f over %d seeds", w.target, w.method, len(indices), w.target, own["loss"].mean(), len(seeds))
    save_parquet(frame, smk.output[0])


run_job(snakemake, main)  # noqa: F821
