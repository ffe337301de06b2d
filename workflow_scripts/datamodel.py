"""Snakemake entry: a size's datamodel matrix, the average of its checkpoints' scores (eq. 17) -> .npy."""

import logging

from proxyscale.artifacts import load_npz
from proxyscale.datamodels.datamodel import datamodel
from proxyscale.io import save_npy
from proxyscale.runner import run_job


def main():
    smk = snakemake  # noqa: F821 (injected by Snakemake)
    blobs = [load_npz(path) for path in smk.input]
    tau = datamodel([b["scores"] for b in blobs], [b["q"] for b in blobs], smk.params.q_term)
    logging.info("datamodel %s from %d checkpoints, q_term=%s", tau.shape, len(blobs), smk.params.q_term)
    save_npy(tau, smk.output[0])


run_job(snakemake, main)  # noqa: F821
