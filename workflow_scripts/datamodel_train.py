"""Snakemake entry: train model {model_id} (its seed), one of the M of size {size} of a datamodel: on its
own random subset of the pool for its Chinchilla budget (language models), or for some epochs on the
whole training set (vision)."""

import logging

from proxyscale.datamodels.budget import checkpoint_examples, passes
from proxyscale.datamodels.dataset import load_dataset
from proxyscale.datamodels.tasks import accuracy, make_task, outputs, save_model, task_config
from proxyscale.device import peak_flops, resolve_device
from proxyscale.runner import run_job
from proxyscale.training.distributed import join
from proxyscale.training.fit import fit
from proxyscale.training.memory import recipe_for
from proxyscale.training.resume import Resume


def main():
    smk = snakemake  # noqa: F821 (injected by Snakemake)
    p = smk.params
    data = load_dataset(smk.input.data)
    task = make_task(data.task)
    size = dict(p.size)
    seed = int(smk.wildcards.model_id)
    train = data.train
    group, device = join(resolve_device(p.device))
    where = f"{smk.wildcards.exp}.sizes.{smk.wildcards.size}"
    recipe, _ = recipe_for(size, p.training, task_config(task, size), device, group, where)
    desc = f"{smk.wildcards.exp} {smk.wildcards.size}/{seed}"
    indices = checkpoint_examples(task, size, len(train), p.budget, p.subset["seed"], seed, p.subset["pool_key"])
    n_passes = passes(task, size, len(indices), p.budget, p.max_repetition, desc)
    model, meta = fit(
        task, size, train, indices, recipe, n_passes, seed, device, desc=desc, group=group,
        resume=Resume.for_job(smk, group), peak_flops=peak_flops(device, smk.config.get("peak_tflops")),
    )  # fmt: skip
    targets = data.part("target")
    meta["target_output_mean"] = float(outputs(task, model, targets, recipe.batch_size, device).mean())
    meta["target_accuracy"] = accuracy(task, model, targets, recipe.batch_size, device)
    logging.info("target accuracy %s, mean target output %.3f", meta["target_accuracy"], meta["target_output_mean"])
    logging.info(
        "params %d, %d of %d examples seen %.2f times, FLOPs %.3g, final loss %.3f, %.1fs",
        meta["params"],
        len(indices),
        len(train),
        *(meta[k] for k in ("repetition", "flops", "final_loss", "wall_seconds")),
    )
    if group.is_main:
        save_model(model, data.task, size, meta, smk.output[0])


run_job(snakemake, main)  # noqa: F821
