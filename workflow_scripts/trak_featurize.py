"""Snakemake entry: one shard of a checkpoint's TRAK featurizing (its training rows' projected gradients,
Q where needed, and their partial Phi^T Phi) in a work directory, where an interrupted run resumes; the
work directory becomes the shard's output once finished."""

import logging

from proxyscale.datamodels import store
from proxyscale.datamodels.dataset import load_dataset
from proxyscale.datamodels.featurize_memory import trak_micro_batch
from proxyscale.datamodels.projectors import checkpoint_seed
from proxyscale.datamodels.tasks import load_model
from proxyscale.device import resolve_device
from proxyscale.layout import parse_shard
from proxyscale.runner import run_job


def main():
    smk = snakemake  # noqa: F821 (injected by Snakemake)
    p, trak = smk.params, smk.params.trak
    device = resolve_device(p.device)
    model, task, _ = load_model(smk.input.model, device)
    train = load_dataset(smk.input.data).train
    shard, shards = parse_shard(smk.wildcards.shard)
    rows = store.shard_rows(len(train), shard, shards)
    store.discard_other_shardings(p.work_dir)
    seed = checkpoint_seed(trak["projector_seed"], int(smk.wildcards.model_id))  # a new projection per model
    settings = {**trak, "seed": seed, "rows": [rows.start, rows.stop]}
    summary = store.featurize(
        model,
        task,
        train,
        trak["batch_size"],
        p.work_dir,
        trak["proj_dim"],
        device,
        seed=seed,
        projector=trak["projector"],
        fingerprint=store.inputs_fingerprint([smk.input.model, smk.input.data], settings),
        micro_batch_size=trak_micro_batch(model, trak, device),
        store_dtype=trak["store_dtype"],
        rows=rows,
        with_q=trak["q"],
    )
    logging.info("shard %s, rows %d-%d: %s", smk.wildcards.shard, rows.start, rows.stop - 1, summary)
    store.publish(p.work_dir, smk.output[0])


run_job(snakemake, main)  # noqa: F821
