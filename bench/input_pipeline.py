"""How long a training step waits for its data, with the batch read inline and on a background thread.

A stand-in for a GPU step on this machine: the training step of a small GPT on batches of language
windows read from a token shard on disk (as ``fit`` and TRAK read them). For each way of reading, prints
the seconds one batch takes to read alone, the seconds per step, the seconds the step waited for its
batch, and that share of the step: on a GPU, the share of the time it would sit idle for want of data.
The ways:

  - ``inline, a read per window``: each window its own ``pread``, the batch read when the step needs it
    (how ``Windows`` read before);
  - ``inline, runs``: the batch's windows read in runs of neighbouring starts, still when the step needs
    them;
  - ``prefetched, runs``: the next batch read on a background thread while the step computes
    (:class:`proxyscale.device.Prefetch`, what ``fit`` and TRAK featurizing do).

Page-cache effects: the shard is written fresh and its windows drawn at random, so the first pass reads
from the page cache; the figures compare the reading strategies, not the disk.

    python bench/input_pipeline.py [--steps 30] [--batch 64] [--window 513] [--tokens 40000000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from proxyscale.datamodels.examples import Windows
from proxyscale.datamodels.tasks import LMTask
from proxyscale.device import Prefetch
from proxyscale.models.architecture import GPTConfig
from proxyscale.models.gpt import GPT

CPU = torch.device("cpu")


def per_window(windows: Windows, rows: np.ndarray) -> np.ndarray:
    return np.concatenate([windows.tokens([r]) for r in rows])


def run(windows: Windows, task: LMTask, batches: list[np.ndarray], read, ahead: bool) -> tuple[float, float]:
    """Seconds per step and seconds waited per step, training a fresh model on ``batches``."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(task.vocab_size, task.context_length, 16, 1, 2))  # a step about as long as a read
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)

    def make(rows):
        tokens = read(windows, rows)
        return task.host_batch(tokens, windows.labels(rows))

    prefetched = Prefetch(make, batches, ahead=ahead)
    start = time.perf_counter()
    for host in prefetched:
        tokens, mask = task.device_batch(host, CPU)
        loss = (model(tokens[:, :-1], targets=tokens[:, 1:]) * mask[:, 1:]).sum() / mask.sum()
        loss.backward()
        opt.step()
        opt.zero_grad()
    return (time.perf_counter() - start) / len(batches), prefetched.waited / len(batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--window", type=int, default=65)
    parser.add_argument("--tokens", type=int, default=40_000_000)
    args = parser.parse_args()
    torch.set_num_threads(1)  # the step on one core, the reading thread on the other
    with tempfile.TemporaryDirectory() as tmp:
        shard = Path(tmp) / "shard.npy"
        np.save(shard, np.random.default_rng(0).integers(0, 512, args.tokens, dtype=np.uint16))
        starts = np.arange(0, args.tokens - args.window, args.window)  # windows cut side by side, as the datasets do
        windows = Windows([shard], starts, args.window)
        rng = np.random.default_rng(1)
        # each checkpoint trains on a random subset of the pool: a batch's windows are scattered, but
        # sorted subsets (budget.checkpoint_examples) make neighbours within a batch common
        subset = np.sort(rng.permutation(len(starts))[: args.steps * args.batch * 4])
        batches = [np.sort(rng.choice(subset, args.batch, replace=False)) for _ in range(args.steps)]
        task = LMTask(512, args.window - 1)
        runs = {
            "inline, a read per window": (per_window, False),
            "inline, runs": (Windows.tokens, False),
            "prefetched, runs": (Windows.tokens, True),
        }
        print(f"{args.steps} steps of {args.batch} windows of {args.window} tokens from a shard of {args.tokens:,}")
        print(f"{'reading':<28} {'read s/batch':>13} {'s/step':>8} {'waited s/step':>14} {'idle share':>11}")
        for name, (read, ahead) in runs.items():
            start = time.perf_counter()
            for rows in batches:
                read(windows, rows)
            alone = (time.perf_counter() - start) / len(batches)
            step, waited = run(windows, task, batches, read, ahead)
            print(f"{name:<28} {alone:13.5f} {step:8.4f} {waited:14.5f} {waited / step:11.1%}")


if __name__ == "__main__":
    main()
