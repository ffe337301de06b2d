"""Snakemake entry: per-sample losses of one checkpoint on every test set (one parquet per test set)."""

import logging

from proxyscale.artifacts import load_parquet
from proxyscale.correlation.evaluate import candidate_scores, per_sample
from proxyscale.data.tokenizer import make_tokenizer
from proxyscale.device import resolve_device
from proxyscale.io import save_parquet
from proxyscale.runner import run_job
from proxyscale.training.lm import load_lm


def main():
    smk = snakemake  # noqa: F821 (injected by Snakemake)
    device = resolve_device(smk.params.device)
    model, _ = load_lm(smk.input.ckpt, device)
    tokenizer = make_tokenizer(smk.params.tokenizer)
    for test, src, dst in zip(smk.params.tests, smk.input.tests, smk.output):
        scores = candidate_scores(model, load_parquet(src), smk.params.batch_size, device, tokenizer)
        table = per_sample(scores)
        logging.info("%s: mean loss %.4f, accuracy %s", test, table["loss"].mean(), table["correct"].mean())
        save_parquet(table, dst)


run_job(snakemake, main)  # noqa: F821
