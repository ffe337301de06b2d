"""Snakemake entry: train checkpoint {ckpt} (its seed) of attribution size {size} on the full training set."""

import logging

import numpy as np

from proxyscale.attribution_data import load_dataset
from proxyscale.device import resolve_device
from proxyscale.fit import fit, save_model
from proxyscale.runner import run_job
from proxyscale.tasks import accuracy, make_task, outputs
from proxyscale.train import Recipe


def main():
    smk = snakemake  # noqa: F821 (injected by Snakemake)
    p = smk.params
    arrays, task_spec = load_dataset(smk.input[0])
    task = make_task(task_spec)
    size = dict(p.size)
    recipe = Recipe(batch_size=size["batch_size"], lr=size["lr"], **p.training)
    seed = int(smk.wildcards.ckpt)
    n = len(arrays["train_inputs"])
    device = resolve_device(p.device)
    model, meta = fit(
        task, size, arrays["train_inputs"], arrays["train_labels"], np.arange(n), recipe, p.epochs, seed,
        device, desc=f"{smk.wildcards.size}/{seed}",
    )
    xt, yt = arrays["target_inputs"], arrays["target_labels"]
    meta["target_output_mean"] = float(outputs(task, model, xt, yt, recipe.batch_size, device).mean())
    meta["target_accuracy"] = accuracy(task, model, xt, yt, recipe.batch_size, device)
    logging.info("target accuracy %s, mean target output %.3f", meta["target_accuracy"], meta["target_output_mean"])
    logging.info("params %d, FLOPs %.3g, final loss %.3f, %.1fs", meta["params"], meta["flops"], meta["final_loss"], meta["wall_seconds"])
    save_model(model, task_spec, size, meta, smk.output[0])


run_job(snakemake, main)  # noqa: F821
