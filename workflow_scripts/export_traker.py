"""Snakemake entry: a size's checkpoints (their kept featurized shards and their targets' gradients,
projected with each checkpoint's own projection) written into traker's on-disk layout, one traker model
id per checkpoint, for traker's own finalize_features and finalize_scores
(:mod:`proxyscale.datamodels.traker_layout`)."""

import logging

import numpy as np

from proxyscale.datamodels import store, traker_layout
from proxyscale.datamodels.dataset import load_dataset
from proxyscale.datamodels.tasks import load_model
from proxyscale.device import resolve_device
from proxyscale.runner import run_job


def main():
    smk = snakemake  # noqa: F821 (injected by Snakemake)
    p = smk.params.scoring
    device = resolve_device(smk.params.device)
    data = load_dataset(smk.input.data)
    targets = data.part("target")
    groups = np.asarray(data["target_task"]) if p["grouped"] else None  # as the trak job scores them
    dirs = {m: traker_layout.check_kept(m, shards) for m, shards in zip(smk.input.models, smk.params.shards)}
    checkpoints = []
    for model_path, shard_dirs in dirs.items():
        model, task, _ = load_model(model_path, device)
        g = store.target_gradients(model, task, targets, p["batch_size"], shard_dirs[0], device)
        if groups is not None:
            g = store.group_means(g, groups)
        checkpoints.append(traker_layout.Checkpoint(str(model_path), shard_dirs, g))
        del model
    summary = traker_layout.export_traker(
        checkpoints, smk.output[0], smk.wildcards.exp, p["lambda_reg"], getattr(smk.params, "dtype", "float32")
    )
    logging.info(
        "traker layout: %d model ids, %d training examples, k %d, %d targets, Q %s",
        len(checkpoints),
        summary["train_set_size"],
        summary["proj_dim"],
        summary["num_targets"],
        summary["q"],
    )


run_job(snakemake, main)  # noqa: F821
