"""Snakemake entry: train one (distribution, size) model -> checkpoint (.pt) and loss curve (parquet)."""

import logging

import numpy as np

from proxyscale.device import resolve_device
from proxyscale.io import save_parquet
from proxyscale.models import GPTConfig
from proxyscale.runner import run_job
from proxyscale.tokenizer import make_tokenizer
from proxyscale.train import Recipe, save_checkpoint, train_lm


def main():
    smk = snakemake  # noqa: F821 (injected by Snakemake)
    p = smk.params
    streams = {name: np.load(path) for name, path in zip(p.shards, smk.input.shards)}
    size = dict(p.size)
    recipe = Recipe(batch_size=size.pop("batch_size"), lr=size.pop("lr"), **p.training)
    cfg = GPTConfig(vocab_size=make_tokenizer(p.tokenizer).vocab_size, context_length=p.model["context_length"], **size)
    model, curve, meta = train_lm(
        streams, p.weights, cfg, recipe, p.model["tokens_per_param"], p.seed, resolve_device(p.device),
        desc=f"{smk.wildcards.dist}/{smk.wildcards.size}",
    )
    meta.update(distribution=smk.wildcards.dist, size=smk.wildcards.size)
    logging.info("params %d, tokens %d, FLOPs %.3g, final loss %.3f, %.1fs", meta["params"], meta["tokens"], meta["flops"], meta["final_loss"], meta["wall_seconds"])
    save_parquet(curve, smk.output.curve)
    save_checkpoint(model, meta, smk.output.ckpt)


run_job(snakemake, main)  # noqa: F821
