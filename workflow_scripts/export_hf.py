"""Snakemake entry: one trained correlation checkpoint as a transformers model directory with its tokenizer."""

import logging

from proxyscale.models.export import export_model
from proxyscale.runner import run_job
from proxyscale.training.lm import load_lm


def main():
    smk = snakemake  # noqa: F821 (injected by Snakemake)
    w = smk.wildcards
    model, meta = load_lm(smk.input.ckpt)
    record = export_model(model, meta, smk.params.tokenizer, smk.output[0], f"sizes.{w.size}")
    logging.info("%s %s: exported as %s, %d params", w.dist, w.size, record["family"], record["params"])


run_job(snakemake, main)  # noqa: F821
