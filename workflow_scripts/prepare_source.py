"""Snakemake entry: one source's documents -> train token stream (.npy) and holdout documents (parquet)."""

import logging

import pandas as pd

from proxyscale.data.prepare import load_source, split_documents, token_stream
from proxyscale.io import save_npy, save_parquet
from proxyscale.runner import run_job
from proxyscale.tokenizer import make_tokenizer


def main():
    p = snakemake.params  # noqa: F821 (injected by Snakemake)
    docs = load_source(p.files)
    train, holdout = split_documents(docs, p.holdout_fraction, salt=snakemake.wildcards.source)  # noqa: F821
    stream = token_stream(train, make_tokenizer(p.tokenizer))
    logging.info("%d documents: %d train (%d tokens), %d holdout", len(docs), len(train), len(stream), len(holdout))
    save_npy(stream, snakemake.output.shard)  # noqa: F821
    save_parquet(pd.DataFrame({"text": holdout}), snakemake.output.holdout)  # noqa: F821


run_job(snakemake, main)  # noqa: F821
