"""Snakemake entry: one target test set -> its target and holdout examples, sharing no passage (parquet)."""

import logging

from proxyscale.artifacts import load_parquet
from proxyscale.io import save_parquet
from proxyscale.runner import run_job
from proxyscale.selection.dataset import target_split


def main():
    smk = snakemake  # noqa: F821 (injected by Snakemake)
    p, target = smk.params, smk.wildcards.target
    split = target_split(load_parquet(smk.input[0]), p.n_targets, p.n_holdout, p.seed, target, p.max_examples)
    for part, rows in split.groupby("part"):
        logging.info("%s %s: %d examples from %d passages", target, part, len(rows), rows["passage"].nunique())
    save_parquet(split, smk.output[0])


run_job(snakemake, main)  # noqa: F821
