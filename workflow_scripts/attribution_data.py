"""Snakemake entry: build the attribution dataset (training and target examples, task spec) -> a directory."""

import logging

from proxyscale.artifacts import load_parquet
from proxyscale.attribution.dataset import lm_dataset, vision_dataset
from proxyscale.data.tokenizer import make_tokenizer
from proxyscale.datamodels.dataset import save_dataset
from proxyscale.runner import run_job


def main():
    smk = snakemake  # noqa: F821 (injected by Snakemake)
    spec = dict(smk.params.spec)
    n_train, n_targets, seed = spec["n_train"], spec["n_targets"], spec["seed"]
    if spec["setting"] == "vision":
        arrays, task = vision_dataset(spec, n_train, n_targets, seed)
    else:
        targets = load_parquet(smk.input[-1])
        vocab = make_tokenizer(spec["tokenizer"]).vocab_size
        arrays, task = lm_dataset(list(smk.input[:-1]), targets, spec, vocab, n_train, n_targets, seed)
    logging.info("task %s; %d training examples, target inputs %s", task, n_train, arrays["target_inputs"].shape)
    save_dataset(arrays, task, smk.output[0])


run_job(snakemake, main)  # noqa: F821
