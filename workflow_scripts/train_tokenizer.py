"""Snakemake entry: a byte-level BPE tokenizer trained on the training sources' train documents."""

import logging
from itertools import chain

from proxyscale.data.prepare import train_documents
from proxyscale.data.tokenizer import train_bpe
from proxyscale.io import atomic_path
from proxyscale.runner import run_job


def main():
    smk = snakemake  # noqa: F821 (injected by Snakemake)
    p = smk.params
    limit = p.tokenizer.get("max_documents")
    docs = chain.from_iterable(train_documents(files, p.holdout_fraction, limit) for files in p.sources.values())
    tok = train_bpe(docs, p.tokenizer["vocab_size"])
    with atomic_path(smk.output[0]) as tmp:
        tok.save(str(tmp))
    logging.info("BPE of %d tokens trained on the train documents of %s", tok.get_vocab_size(), ", ".join(p.sources))


run_job(snakemake, main)  # noqa: F821
