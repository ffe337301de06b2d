"""Snakemake entry: per-sample losses of one imported transformers checkpoint on every test set, each
re-tokenised with the model's own tokenizer, and the run's record (params, tokens, FLOPs, source)."""

import logging

from proxyscale.correlation.evaluate import evaluate_test_sets
from proxyscale.device import resolve_device
from proxyscale.io import save_json
from proxyscale.models.imported import load_imported
from proxyscale.runner import run_job


def main():
    smk = snakemake  # noqa: F821 (injected by Snakemake)
    p, w = smk.params, smk.wildcards
    device = resolve_device(p.device)
    imported = load_imported(dict(p.model), device)
    record = {**imported.record, "distribution": w.dist, "size": w.size, "device": str(device)}
    logging.info(
        "%s %s: %s, %d params, %d training tokens (config), context %d, tokenizer of %d tokens",
        w.dist, w.size, record["architecture"], record["params"], record["tokens"], record["context_length"],
        record["vocab_size"],
    )  # fmt: skip
    evaluate_test_sets(
        imported.model, imported.tokenizer, p.tests, smk.input.tests, smk.output.losses, p.batch_size, device,
        retokenised=True,
    )  # fmt: skip
    save_json(record, smk.output.record)


run_job(snakemake, main)  # noqa: F821
