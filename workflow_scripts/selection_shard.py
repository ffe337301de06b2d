"""Snakemake entry: one selection's windows as a token stream, a training distribution for the
scale-correlation experiment -> .npy."""

import logging

from proxyscale.artifacts import load_parquet
from proxyscale.datamodels.dataset import load_dataset
from proxyscale.io import save_npy
from proxyscale.runner import run_job
from proxyscale.selection.methods import selected_indices
from proxyscale.selection.retrain import selected_stream


def main():
    smk = snakemake  # noqa: F821 (injected by Snakemake)
    arrays, _ = load_dataset(smk.input.data)
    stream = selected_stream(arrays, selected_indices(load_parquet(smk.input.subset)))
    logging.info("%d tokens", len(stream))
    save_npy(stream, smk.output[0])


run_job(snakemake, main)  # noqa: F821
