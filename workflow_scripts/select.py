"""Snakemake entry: one selection method toward one target task -> parquet of pool indices and scores."""

import logging

import numpy as np

from proxyscale import selection
from proxyscale.attribution_data import load_dataset
from proxyscale.io import save_parquet
from proxyscale.runner import run_job


def main():
    smk = snakemake  # noqa: F821 (injected by Snakemake)
    p = smk.params.spec
    arrays, task = load_dataset(smk.input.data)
    n = len(arrays["train_inputs"])
    k = max(1, round(p["fraction"] * n))
    tau = np.load(smk.input.datamodel) if "datamodel" in smk.input.keys() else None
    indices, scores = selection.select(
        p["kind"], arrays, task["targets"].index(smk.wildcards.target), k, p["seed"], p["ngram_buckets"], tau
    )
    logging.info("%s toward %s: kept %d of %d pool examples", smk.wildcards.method, smk.wildcards.target, len(indices), n)
    save_parquet(selection.subset_frame(indices, scores), smk.output[0])


run_job(snakemake, main)  # noqa: F821
