"""Snakemake entry: per-sample losses of one imported transformers checkpoint on every test set, each
re-tokenised with the model's own tokenizer, and the run's record (params, tokens, FLOPs, source)."""

import logging

from proxyscale.artifacts import load_parquet
from proxyscale.correlation.evaluate import candidate_scores, per_sample, retokenise
from proxyscale.device import resolve_device
from proxyscale.io import save_json, save_parquet
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
    for test, src, dst in zip(p.tests, smk.input.tests, smk.output.losses):
        frame = retokenise(load_parquet(src), imported.tokenizer, src)
        table = per_sample(candidate_scores(imported.model, frame, p.batch_size, device, imported.tokenizer))
        logging.info("%s: mean loss %.4f, accuracy %s", test, table["loss"].mean(), table["correct"].mean())
        save_parquet(table, dst)
    save_json(record, smk.output.record)


run_job(snakemake, main)  # noqa: F821
