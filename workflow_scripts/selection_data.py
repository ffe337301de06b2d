"""Snakemake entry: build the selection dataset (pool windows, target and holdout parts) -> a directory."""

import logging

import numpy as np

from proxyscale.artifacts import load_parquet
from proxyscale.data.tokenizer import make_tokenizer
from proxyscale.datamodels.dataset import save_dataset
from proxyscale.runner import run_job
from proxyscale.selection.dataset import selection_dataset


def main():
    smk = snakemake  # noqa: F821 (injected by Snakemake)
    spec = dict(smk.params.spec)
    shards = dict(zip(spec["sources"], smk.input.shards))
    targets = {name: load_parquet(path) for name, path in zip(spec["targets"], smk.input.targets)}
    splits = {name: load_parquet(path) for name, path in zip(spec["targets"], smk.input.splits)}
    vocab_size = make_tokenizer(spec["tokenizer"]).vocab_size
    arrays, task = selection_dataset(shards, targets, splits, spec, vocab_size)
    counts = np.bincount(arrays["train_source"], minlength=len(shards))
    logging.info("pool of %d windows from %s", len(arrays["train_origin"]), dict(zip(shards, counts.tolist())))
    logging.info("targets %s, holdout %s", arrays["target_inputs"].shape, arrays["holdout_inputs"].shape)
    save_dataset(arrays, task, smk.output[0])


run_job(snakemake, main)  # noqa: F821
