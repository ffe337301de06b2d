"""Snakemake entry: retrain the reference on LDS subset {subset}; record its outputs on every target."""

import logging

import numpy as np

from proxyscale.attribution.lds import subset_mask, subset_seed
from proxyscale.datamodels.budget import passes
from proxyscale.datamodels.dataset import load_dataset
from proxyscale.datamodels.tasks import make_task, outputs, task_config
from proxyscale.device import peak_flops, resolve_device
from proxyscale.io import save_npz
from proxyscale.runner import run_job
from proxyscale.training.distributed import join
from proxyscale.training.fit import fit
from proxyscale.training.memory import recipe_for
from proxyscale.training.resume import Resume


def main():
    smk = snakemake  # noqa: F821 (injected by Snakemake)
    p = smk.params
    index = int(smk.wildcards.subset)
    group, device = join(resolve_device(p.device))
    data = load_dataset(smk.input.data)
    task = make_task(data.task)
    train = data.train
    mask = subset_mask(len(train), p.alpha, p.seed, index)
    size = dict(p.size)
    seed = subset_seed(p.seed, index)
    recipe, _ = recipe_for(size, p.training, task_config(task, size), device, group, "attribution reference")
    desc = f"LDS subset {index}"
    n_passes = passes(task, size, int(mask.sum()), p.budget, p.max_repetition, desc)
    model, meta = fit(
        task, size, train, np.flatnonzero(mask), recipe, n_passes, seed, device, desc=desc, group=group,
        resume=Resume.for_job(smk, group), peak_flops=peak_flops(device, smk.config.get("peak_tflops")),
    )  # fmt: skip
    out = outputs(task, model, data.part("target"), p.batch_size, device)
    logging.info(
        "subset %d: %d examples seen %.2f times, final loss %.3f, mean target output %.3f",
        index,
        mask.sum(),
        meta["repetition"],
        meta["final_loss"],
        out.mean(),
    )
    if group.is_main:
        save_npz(
            smk.output[0],
            mask=mask,
            outputs=out,
            flops=meta["flops"],
            repetition=meta["repetition"],
            wall_seconds=meta["wall_seconds"],
        )


run_job(snakemake, main)  # noqa: F821
