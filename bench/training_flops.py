"""How close training gets to this machine's limit: fp32 GEMM GFLOP/s, and each size's achieved share.

Prints the machine's fp32 GEMM GFLOP/s (one thread, as a workflow job with ``threads: 1`` runs, and
all cores), then for every language-model size of the config (the correlation sizes, then the
selection sizes) the real training loop's (:func:`proxyscale.training.lm.train_lm`) GFLOP/s by the
6ND rule, its share of one thread's GEMM rate, the share of the compute that 6ND leaves out
(attention's scores, 6 x layers x context x d_model FLOPs per token by Kaplan et al.'s count, which
also does a softmax over batch x heads x context^2 entries per layer), and where a step's time goes:
forward + backward alone, the optimizer step (clipping + AdamW) alone, and the rest (batch
sampling, learning rate, bookkeeping).

    python bench/training_flops.py [--config config.yaml] [--seconds 3]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch
import yaml
from timing import seconds_per_call  # bench/timing.py (bench/ is on sys.path when run)

from proxyscale.models.architecture import GPTConfig, count_parameters
from proxyscale.models.gpt import GPT
from proxyscale.training.lm import train_lm
from proxyscale.training.recipe import Recipe, make_optimizer, update

REPO = Path(__file__).resolve().parents[1]
VOCAB = 257  # the default byte tokenizer


def gemm_gflops(threads: int, n: int = 1024, seconds: float = 2.0) -> float:
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n**3 / seconds_per_call(lambda: a @ b, seconds) / 1e9


def size_row(name: str, size: dict, context: int, seconds: float, peak: float) -> str:
    cfg = GPTConfig.from_size(size, VOCAB, context)
    recipe = Recipe.from_size(size, {})
    params = count_parameters(cfg)
    tokens_per_step = recipe.batch_size * context
    # the real loop, on random tokens, for about `seconds` (steps from the 6ND budget it implies)
    probe = train_lm(
        {"s": np.random.default_rng(0).integers(0, VOCAB, 200_000)}, {"s": 1.0}, cfg, recipe, 1.0, 0, CPU, "probe"
    )[2]
    per_step = probe["wall_seconds"] / probe["steps"]
    steps = max(20, int(seconds / per_step))
    meta = train_lm(
        {"s": np.random.default_rng(0).integers(0, VOCAB, 200_000)},
        {"s": 1.0},
        cfg,
        recipe,
        steps * tokens_per_step / params,
        0,
        CPU,
        "bench",
    )[2]
    loop = meta["wall_seconds"] / meta["steps"]
    gflops = meta["flops"] / meta["wall_seconds"] / 1e9
    model = GPT(cfg)
    opt = make_optimizer(model, recipe)
    batch = torch.randint(0, VOCAB, (recipe.batch_size, context + 1))

    def forward_backward():
        model.zero_grad(set_to_none=True)
        model(batch[:, :-1], targets=batch[:, 1:]).mean().backward()

    fb = seconds_per_call(forward_backward, seconds / 3)
    grads = [torch.randn_like(p) for p in model.parameters()]

    def gradients():
        for p, g in zip(model.parameters(), grads):
            p.grad = g

    def optimizer_update():
        gradients()
        update(model, opt, 1e-3, 1.0)

    step = seconds_per_call(optimizer_update, 1.0) - seconds_per_call(gradients, 0.5)
    rest = max(0.0, loop - fb - step)
    attention = 6 * cfg.n_layers * context * cfg.d_model  # per token, beyond 6N
    return (
        f"{name:>10} {params:>9,} {recipe.batch_size:>5} {loop * 1e3:8.2f} {gflops:7.2f} {gflops / peak:7.1%} "
        f"{attention / (6 * params + attention):7.0%} | {fb / loop:5.0%} {step / loop:5.0%} {rest / loop:5.0%}"
    )


CPU = torch.device("cpu")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "config.yaml")
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    args = parser.parse_args()
    config = yaml.safe_load(args.config.read_text())
    cores = os.cpu_count()
    all_cores = gemm_gflops(cores)
    one = gemm_gflops(1)
    print(f"fp32 GEMM (1024^3): {one:.1f} GFLOP/s on 1 thread, {all_cores:.1f} on {cores} threads")
    print("training on 1 thread (as jobs with threads: 1 run); share of the 1-thread GEMM rate")
    header = f"{'size':>10} {'params':>9} {'batch':>5} {'ms/step':>8} {'GFLOP/s':>7} {'of GEMM':>7} {'attn':>7}"
    print(header + f" | {'f+b':>5} {'opt':>5} {'rest':>5}")
    groups = [("correlation", config["sizes"], config["model"]["context_length"])]
    groups.append(("selection", config["selection"]["sizes"], config["selection"]["context_length"]))
    for label, sizes, context in groups:
        print(f"{label} (context {context})")
        for name, size in sizes.items():
            print(size_row(name, size, context, args.seconds, one), flush=True)


if __name__ == "__main__":
    main()
