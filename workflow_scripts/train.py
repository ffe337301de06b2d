"""Snakemake entry: train one (distribution, size) model -> checkpoint (.pt) and loss curve (parquet)."""

import logging

from proxyscale.artifacts import load_npy
from proxyscale.data.tokenizer import make_tokenizer
from proxyscale.device import resolve_device
from proxyscale.io import save_parquet
from proxyscale.runner import run_job
from proxyscale.training.distributed import join
from proxyscale.training.lm import gpt_config, save_lm, train_lm
from proxyscale.training.recipe import Recipe


def main():
    smk = snakemake  # noqa: F821 (injected by Snakemake)
    p, w = smk.params, smk.wildcards
    streams = {name: load_npy(path, mmap=True) for name, path in zip(p.shards, smk.input.shards)}
    recipe = Recipe.from_size(p.size, p.training)
    cfg = gpt_config(p.size, make_tokenizer(p.tokenizer).vocab_size, p.model["context_length"])
    group, device = join(resolve_device(p.device))
    model, curve, meta = train_lm(
        streams,
        p.weights,
        cfg,
        recipe,
        p.model["tokens_per_param"],
        p.seed,
        device,
        desc=f"{w.dist}/{w.size}",
        max_repetition=p.model["max_repetition"],
        group=group,
    )
    meta.update(distribution=w.dist, size=w.size)
    logging.info(
        "params %d, tokens %d (%.2f x the %d unique tokens), FLOPs %.3g, final loss %.3f, %.1fs",
        *(meta[k] for k in ("params", "tokens", "repetition", "unique_tokens", "flops", "final_loss", "wall_seconds")),
    )
    if group.is_main:
        save_parquet(curve, smk.output.curve)
        save_lm(model, meta, smk.output.ckpt)


run_job(snakemake, main)  # noqa: F821
