"""Snakemake entry: one source's documents -> train token stream (.npy) and holdout documents (parquet)."""

import logging

import pandas as pd

from proxyscale.data.prepare import load_source, split_documents, token_stream
from proxyscale.data.tokenizer import make_tokenizer
from proxyscale.io import save_npy, save_parquet
from proxyscale.runner import run_job


def main():
    smk = snakemake  # noqa: F821 (injected by Snakemake)
    p = smk.params
    docs = load_source(p.files)
    train, holdout = split_documents(docs, p.holdout_fraction)
    stream = token_stream(train, make_tokenizer(p.tokenizer))
    logging.info("%d documents: %d train (%d tokens), %d holdout", len(docs), len(train), len(stream), len(holdout))
    save_npy(stream, smk.output.shard)
    save_parquet(pd.DataFrame({"text": holdout}), smk.output.holdout)


run_job(snakemake, main)  # noqa: F821
