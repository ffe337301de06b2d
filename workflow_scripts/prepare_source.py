"""Snakemake entry: one source's documents -> train token stream (.npy) and holdout documents (parquet),
streamed a batch of documents at a time."""

import logging

from proxyscale.data.prepare import iter_source, prepare_source
from proxyscale.data.tokenizer import make_tokenizer
from proxyscale.runner import run_job


def main():
    smk = snakemake  # noqa: F821 (injected by Snakemake)
    p = smk.params
    tokenizer = make_tokenizer(p.tokenizer)
    stats = prepare_source(
        iter_source(p.files),
        tokenizer,
        p.holdout_fraction,
        smk.output.shard,
        smk.output.holdout,
        desc=smk.wildcards.source,
    )
    logging.info(
        "%(documents)d documents (%(characters)d characters): %(train_documents)d train (%(tokens)d tokens), "
        "%(holdout_documents)d holdout",
        stats,
    )


run_job(snakemake, main)  # noqa: F821
