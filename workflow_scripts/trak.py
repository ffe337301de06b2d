"""Snakemake entry: one checkpoint's TRAK scores for the targets from its featurized shards (their partial
Phi^T Phi summed and inverted once) -> .npy, and its small store (summary with every shard's wall time,
and Q where computed)."""

import logging

from proxyscale.datamodels import store
from proxyscale.datamodels.dataset import load_dataset
from proxyscale.datamodels.tasks import load_model
from proxyscale.device import resolve_device
from proxyscale.runner import run_job


def main():
    smk = snakemake  # noqa: F821 (injected by Snakemake)
    p = smk.params.scoring
    device = resolve_device(smk.params.device)
    model, task, _ = load_model(smk.input.model, device)
    data = load_dataset(smk.input.data)
    shards = list(smk.input.featurized)
    groups = data["target_task"] if p["grouped"] else None  # selection: one mean target gradient per task
    scoring = store.score(
        model, task, data.part("target"), p["batch_size"], shards, smk.output.scores, device, groups, p["lambda_reg"]
    )
    logging.info("scores %s from %d shards in %.1fs", scoring["shape"], len(shards), scoring["score_seconds"])
    store.write_store(shards, smk.output.store, scoring)


run_job(snakemake, main)  # noqa: F821
