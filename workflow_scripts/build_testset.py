"""Snakemake entry: one test set -> tokenised candidates (parquet)."""

import logging

from proxyscale.artifacts import load_parquet
from proxyscale.data.prepare import test_candidates, tokenise_candidates
from proxyscale.data.testsets import subsample
from proxyscale.data.tokenizer import make_tokenizer
from proxyscale.io import save_parquet
from proxyscale.runner import run_job


def main():
    smk = snakemake  # noqa: F821 (injected by Snakemake)
    p = smk.params
    holdouts = {src: load_parquet(path)["text"].tolist() for src, path in zip(p.holdout_sources, smk.input.holdouts)}
    candidates, kind = test_candidates(p.spec, holdouts, p.max_chars)
    candidates = subsample(candidates, p.max_examples, p.seed)
    frame = tokenise_candidates(candidates, kind, make_tokenizer(p.tokenizer))
    examples = frame["example_id"].nunique()
    logging.info("%s: %d examples, %d candidates, kind %s", smk.wildcards.test, examples, len(frame), kind)
    save_parquet(frame, smk.output[0])


run_job(snakemake, main)  # noqa: F821
