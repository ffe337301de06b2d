"""Snakemake entry: train one (distribution, size) model -> checkpoint (.pt) and loss curve (parquet)."""

import logging

from proxyscale.artifacts import load_npy
from proxyscale.data.tokenizer import make_tokenizer
from proxyscale.device import peak_flops, resolve_device
from proxyscale.io import save_parquet
from proxyscale.models.architecture import GPTConfig
from proxyscale.runner import run_job
from proxyscale.training.distributed import join
from proxyscale.training.lm import save_lm, train_lm
from proxyscale.training.memory import recipe_for
from proxyscale.training.resume import Resume


def main():
    smk = snakemake  # noqa: F821 (injected by Snakemake)
    p, w = smk.params, smk.wildcards
    streams = {name: load_npy(path, mmap=True) for name, path in zip(p.shards, smk.input.shards)}
    cfg = GPTConfig.from_size(p.size, make_tokenizer(p.tokenizer).vocab_size, p.model["context_length"])
    group, device = join(resolve_device(p.device))
    recipe, memory = recipe_for(p.size, p.training, cfg, device, group, f"sizes.{w.size}")
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
        resume=Resume.for_job(smk, group),
        peak_flops=peak_flops(device, smk.config.get("peak_tflops")),
    )
    meta.update(distribution=w.dist, size=w.size, memory_estimate_bytes=memory.estimate.total)
    logging.info(
        "params %d, tokens %d (%.2f x the %d unique tokens), FLOPs %.3g, final loss %.3f, %.1fs, "
        "%.0f tokens/s per device, MFU %s",
        *(meta[k] for k in ("params", "tokens", "repetition", "unique_tokens", "flops", "final_loss", "wall_seconds")),
        meta["tokens_per_second"],
        "unknown (set peak_tflops)" if meta["mfu"] is None else f"{meta['mfu']:.1%}",
    )
    if group.is_main:
        save_parquet(curve, smk.output.curve)
        save_lm(model, meta, smk.output.ckpt)


run_job(snakemake, main)  # noqa: F821
