"""Training throughput of the paper preset's sizes on this GPU, against the memory model.

For each size of ``configs/paper_lm.yaml`` (or ``--config``): the size's recipe resolved on this device
as a training job resolves it (:func:`proxyscale.training.memory.recipe_for`: ``auto`` micro-batch and
activation checkpointing), then ``--steps`` optimiser steps of the preset's global batch of random
windows through the training loop's own step (:class:`proxyscale.training.loop.Steps`: micro-batches,
gradient accumulation, bf16 autocast), after one warm-up step. Prints per size: the micro-batch,
tokens/s per GPU, MFU (6ND over the device's peak bf16 FLOP/s), the peak memory
(``torch.cuda.max_memory_allocated``) and the memory model's estimate, and their ratio.

    python bench/gpu_training.py [--steps 3] [--sizes 37m,760m] [--attention sdpa|flex] [--compile]

Needs a CUDA GPU; prepared to finish in under 5 minutes on one H100/H200 (about 4 GPU-seconds per
step of 760m at the llm-foundry MFU). Prints one line per size as it goes, so a cut-off run still
reports what it measured.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import yaml

from proxyscale.device import autocast, mfu, peak_flops
from proxyscale.models.architecture import GPTConfig, count_parameters, training_flops
from proxyscale.models.gpt import GPT
from proxyscale.training.distributed import SINGLE
from proxyscale.training.loop import Steps, micro_slices, prepare
from proxyscale.training.memory import GIB, recipe_for
from proxyscale.training.recipe import make_optimizer

REPO = Path(__file__).resolve().parents[1]
VOCAB = 50277  # the GPT-NeoX tokenizer of the preset


def run_size(name: str, size: dict, training: dict, context: int, steps: int, device, peak) -> str:
    cfg = GPTConfig(
        vocab_size=VOCAB, context_length=context, **{k: size[k] for k in ("d_model", "n_layers", "n_heads")}
    )
    recipe, choice = recipe_for(size, training, cfg, device, SINGLE, f"sizes.{name}")
    torch.manual_seed(0)
    model = GPT(cfg).to(device)
    prepare(model, recipe, device)
    runner = Steps(model, make_optimizer(model, recipe), recipe, SINGLE, device, name)
    micro = micro_slices(recipe.batch_size, recipe.micro_batch_size)
    tokens = recipe.batch_size * context
    batch = torch.randint(0, VOCAB, (recipe.batch_size, context + 1), device=device)

    def loss_of(part):
        def loss():
            with autocast(device):
                return model(batch[part, :-1], targets=batch[part, 1:]).sum() / tokens

        return loss

    model.train()
    runner.step([loss_of(p) for p in micro], recipe.lr)  # warm-up: allocator, kernels, compile
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(steps):
        runner.step([loss_of(p) for p in micro], recipe.lr)
    runner.read(steps, recipe.lr)
    torch.cuda.synchronize(device)
    wall = time.perf_counter() - start
    params = count_parameters(cfg)
    used = mfu(training_flops(params, steps * tokens), wall, 1, peak)
    measured = torch.cuda.max_memory_allocated(device)
    predicted = choice.estimate.total
    ckpt = "*" if recipe.activation_checkpointing else " "
    shown = "n/a" if used is None else f"{used:.1%}"
    return (
        f"{name:>6} {params / 1e6:7.1f}M  micro {recipe.micro_batch_size:>3}{ckpt}"
        f"  {steps * tokens / wall:10,.0f} tok/s"
        f"  MFU {shown:>6}  peak {measured / GIB:6.1f} GiB  model {predicted / GIB:6.1f} GiB"
        f"  ratio {measured / predicted:5.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "configs/paper_lm.yaml")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--sizes", help="comma-separated size names (default: all of the preset's)")
    parser.add_argument("--attention", choices=["sdpa", "flex"], default="sdpa")
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("bench/gpu_training.py needs a CUDA GPU")
    config = yaml.safe_load(args.config.read_text())
    device = torch.device("cuda")
    peak = peak_flops(device, config.get("peak_tflops"))
    keep = ("warmup_frac", "min_lr_frac", "weight_decay", "beta1", "beta2", "grad_clip")
    training = {k: v for k, v in config.get("training", {}).items() if k in keep}
    training |= {"attention": args.attention, "compile": args.compile}
    names = args.sizes.split(",") if args.sizes else list(config["sizes"])
    print(f"{torch.cuda.get_device_name(device)}, peak {peak / 1e12 if peak else float('nan'):.0f} TFLOP/s bf16, "
          f"context {config['model']['context_length']}, {args.attention}{' compiled' if args.compile else ''}; "
          "* = activation checkpointing", flush=True)  # fmt: skip
    for name in names:
        line = run_size(
            name, config["sizes"][name], training, config["model"]["context_length"], args.steps, device, peak
        )
        print(line, flush=True)


if __name__ == "__main__":
    main()
