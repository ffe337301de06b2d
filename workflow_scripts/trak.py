"""Snakemake entry: one checkpoint's TRAK store (featurized and finalized in a work directory; an
interrupted run resumes there) and its raw scores for the targets -> .npy; the work directory becomes
the store only once the scores are written, so a failed scoring keeps the store for the rerun."""

import logging

from proxyscale.datamodels import store
from proxyscale.datamodels.dataset import load_dataset
from proxyscale.datamodels.featurize_memory import trak_micro_batch
from proxyscale.datamodels.projectors import checkpoint_seed
from proxyscale.datamodels.tasks import load_model
from proxyscale.device import resolve_device
from proxyscale.runner import run_job


def main():
    smk = snakemake  # noqa: F821 (injected by Snakemake)
    p, trak = smk.params, smk.params.trak
    device = resolve_device(p.device)
    model, task, _ = load_model(smk.input.model, device)
    data = load_dataset(smk.input.data)
    seed = checkpoint_seed(trak["projector_seed"], int(smk.wildcards.model_id))  # a new projection per model
    micro = trak_micro_batch(model, trak, device)
    settings = {**trak, "seed": seed}
    summary = store.featurize(
        model,
        task,
        data.train,
        trak["batch_size"],
        p.work_dir,
        trak["proj_dim"],
        device,
        seed=seed,
        lambda_reg=trak["lambda_reg"],
        projector=trak["projector"],
        fingerprint=store.inputs_fingerprint([smk.input.model, smk.input.data], settings),
        micro_batch_size=micro,
        store_dtype=trak["store_dtype"],
    )
    logging.info("store %s: %s", p.work_dir, summary)
    groups = data["target_task"] if p.grouped else None  # selection: one mean target gradient per task
    scoring = store.score(
        model, task, data.part("target"), trak["batch_size"], p.work_dir, smk.output.scores, device, groups
    )
    logging.info("scores %s in %.1fs", scoring["shape"], scoring["score_seconds"])
    store.publish(p.work_dir, smk.output.store, scoring)


run_job(snakemake, main)  # noqa: F821
