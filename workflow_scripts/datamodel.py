"""Snakemake entry: a size's datamodel matrix, the average of its checkpoints' scores (eq. 17, times
their averaged Q with ``q_term``) -> .npy, written a block of training rows at a time."""

import logging

from proxyscale.datamodels.datamodel import CheckpointScores, write_datamodel
from proxyscale.datamodels.store import load_q
from proxyscale.runner import run_job


def main():
    smk = snakemake  # noqa: F821 (injected by Snakemake)
    qs = [load_q(s) for s in smk.input.stores] if smk.params.q_term else []  # computed only when used
    scores = CheckpointScores(list(smk.input.scores), qs)
    write_datamodel(scores, smk.params.q_term, smk.output[0])
    logging.info(
        "datamodel (%d, %d) from %d checkpoints, q_term=%s",
        scores.n,
        scores.columns,
        len(scores.files),
        smk.params.q_term,
    )


run_job(snakemake, main)  # noqa: F821
