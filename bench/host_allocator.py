"""What keeping freed host memory (``proxyscale.runner.keep_freed_memory``) does to a CPU training job.

Trains the default config's reference language model (byte vocabulary, 128 tokens of context, d_model
56, 2 layers, 4 heads, batch 16, 20 tokens per parameter) on a seeded random token shard, memory-mapped
as the train job maps its shards, twice, each in a fresh process: once with glibc's default malloc
settings, once after ``keep_freed_memory()``, as every workflow job does. Prints each run's wall seconds
and minor page faults (``ru_minflt``), their ratios, and checks the two runs end with the same loss
(the setting changes where memory comes from, not what is computed).

    python bench/host_allocator.py [--repeats 2]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def train(keep: bool, shard: str, queue) -> None:
    import torch

    from proxyscale.artifacts import load_npy
    from proxyscale.models.gpt import GPTConfig
    from proxyscale.runner import keep_freed_memory
    from proxyscale.training.lm import train_lm
    from proxyscale.training.recipe import Recipe

    torch.set_num_threads(2)
    took = keep_freed_memory() if keep else None
    stream = load_npy(shard, mmap=True)
    recipe = Recipe(16, 0.003, warmup_frac=0.05, min_lr_frac=0.1, weight_decay=0.1, grad_clip=1.0)
    faults, start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
    _, _, meta = train_lm({"w": stream}, {"w": 1}, GPTConfig(257, 128, 56, 2, 4), recipe, 20, 0, torch.device("cpu"))
    seconds = time.perf_counter() - start
    queue.put((took, seconds, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults, meta["final_loss"]))


def run(keep: bool, shard: Path) -> tuple:
    ctx = mp.get_context("spawn")  # a fresh allocator per run
    queue = ctx.Queue()
    proc = ctx.Process(target=train, args=(keep, str(shard), queue))
    proc.start()
    out = queue.get()
    proc.join()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs of each setting")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="host_allocator_"))
    np.save(work / "shard.npy", np.random.default_rng(0).integers(1, 257, 2_000_000).astype(np.uint16))
    results = {False: [], True: []}
    for _ in range(args.repeats):
        for keep in (False, True):
            took, seconds, faults, loss = run(keep, work / "shard.npy")
            results[keep].append((seconds, faults, loss))
            label = f"keep_freed_memory (taken: {took})" if keep else "glibc defaults"
            print(f"{label:36s} {seconds:7.2f} s  {faults:>10,} minor faults  final loss {loss:.6f}")
    shutil.rmtree(work)
    best = {keep: min(r[0] for r in runs) for keep, runs in results.items()}
    faults = {keep: min(r[1] for r in runs) for keep, runs in results.items()}
    print(f"time, defaults / kept (best of {args.repeats}): {best[False] / best[True]:.2f}x")
    print(f"minor faults, defaults / kept: {faults[False] / max(faults[True], 1):.0f}x")
    print("same final loss:", len({r[2] for runs in results.values() for r in runs}) == 1)


if __name__ == "__main__":
    main()
