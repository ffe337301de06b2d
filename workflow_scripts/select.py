"""Snakemake entry: one selection method toward one target task -> parquet of pool indices and scores."""

import logging

from proxyscale.datamodels.dataset import load_dataset
from proxyscale.datamodels.tasks import make_task
from proxyscale.io import save_parquet
from proxyscale.runner import run_job
from proxyscale.selection.methods import select, selection_size, subset_frame


def main():
    smk = snakemake  # noqa: F821 (injected by Snakemake)
    p, w = smk.params.spec, smk.wildcards
    data = load_dataset(smk.input.data)
    n = len(data.train)
    k = selection_size(n, p["fraction"], make_task(data.task), p["reference"], p["tokens_per_param"])
    datamodel = smk.input.datamodel if "datamodel" in smk.input.keys() else None
    target = data.task["targets"].index(w.target)
    indices, scores = select(p["kind"], data, target, k, p["seed"], p["ngram_buckets"], datamodel)
    logging.info("%s toward %s: kept %d of %d pool examples", w.method, w.target, len(indices), n)
    save_parquet(subset_frame(indices, scores), smk.output[0])


run_job(snakemake, main)  # noqa: F821
