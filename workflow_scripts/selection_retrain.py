"""Snakemake entry: retrain the reference on one selection; per-example holdout loss -> parquet."""

import logging

from proxyscale.artifacts import load_parquet
from proxyscale.datamodels.budget import passes
from proxyscale.datamodels.dataset import load_dataset
from proxyscale.datamodels.tasks import make_task, task_config
from proxyscale.device import peak_flops, resolve_device
from proxyscale.io import save_parquet
from proxyscale.runner import run_job
from proxyscale.selection.methods import selected_indices
from proxyscale.selection.retrain import retrain
from proxyscale.training.distributed import join
from proxyscale.training.memory import recipe_for
from proxyscale.training.resume import Resume


def main():
    smk = snakemake  # noqa: F821 (injected by Snakemake)
    p, w = smk.params, smk.wildcards
    data = load_dataset(smk.input.data)
    indices = selected_indices(load_parquet(smk.input.subset))
    size = dict(p.size)
    task = make_task(data.task)
    seeds = [p.seed + r for r in range(p.seeds)]
    group, device = join(resolve_device(p.device))
    recipe, _ = recipe_for(size, p.training, task_config(task, size), device, group, "selection reference")
    desc = f"{w.target}/{w.method}"
    n_passes = passes(task, size, len(indices), p.budget, p.max_repetition, desc)
    frame = retrain(
        data, size, recipe, n_passes, indices, seeds, p.batch_size, device, desc=desc, group=group,
        resume_for=lambda seed: Resume.for_job(smk, group, tag=f"seed{seed}"),
        peak_flops=peak_flops(device, smk.config.get("peak_tflops")),
    )  # fmt: skip
    own = frame[frame["holdout_task"] == w.target]
    logging.info(
        "%s: %d examples, holdout loss on %s %.4f over %d seeds",
        desc,
        len(indices),
        w.target,
        own["loss"].mean(),
        len(seeds),
    )
    if group.is_main:
        save_parquet(frame, smk.output[0])


run_job(snakemake, main)  # noqa: F821
