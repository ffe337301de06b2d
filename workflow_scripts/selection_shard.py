"""Snakemake entry: one selection's windows as a token stream, a training distribution for the
scale-correlation experiment -> .npy."""

import logging

from proxyscale.artifacts import load_parquet
from proxyscale.datamodels.dataset import load_dataset
from proxyscale.runner import run_job
from proxyscale.selection.methods import selected_indices
from proxyscale.selection.retrain import write_selected_stream


def main():
    smk = snakemake  # noqa: F821 (injected by Snakemake)
    data = load_dataset(smk.input.data)
    tokens = write_selected_stream(data, selected_indices(load_parquet(smk.input.subset)), smk.output[0])
    logging.info("%d tokens", tokens)


run_job(snakemake, main)  # noqa: F821
