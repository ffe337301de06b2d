"""Snakemake entry: per-sample losses of one checkpoint on every test set (one parquet per test set)."""

from proxyscale.correlation.evaluate import evaluate_test_sets
from proxyscale.data.tokenizer import make_tokenizer
from proxyscale.device import resolve_device
from proxyscale.runner import run_job
from proxyscale.training.lm import load_lm


def main():
    smk = snakemake  # noqa: F821 (injected by Snakemake)
    p = smk.params
    device = resolve_device(p.device)
    model, _ = load_lm(smk.input.ckpt, device)
    evaluate_test_sets(model, make_tokenizer(p.tokenizer), p.tests, smk.input.tests, smk.output, p.batch_size, device)


run_job(snakemake, main)  # noqa: F821
