"""Snakemake entry: build the attribution dataset (training and target examples, task spec) -> .npz."""

import logging

from proxyscale.artifacts import load_npy, load_parquet
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
        streams = [load_npy(path, mmap=True) for path in smk.input[:-1]]
        targets = load_parquet(smk.input[-1])
        vocab = make_tokenizer(spec["tokenizer"]).vocab_size
        arrays, task = lm_dataset(streams, targets, spec, vocab, n_train, n_targets, seed)
    shapes = arrays["train_inputs"].shape, arrays["target_inputs"].shape
    logging.info("task %s; train inputs %s, target inputs %s", task, *shapes)
    save_dataset(arrays, task, smk.output[0])


run_job(snakemake, main)  # noqa: F821
