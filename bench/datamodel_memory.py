"""Peak resident memory of the trak, datamodel and select jobs' work at two pool sizes.

Builds a selection-style dataset of ``--small`` and ten times as many windows (``--window`` tokens each)
over a token shard, then runs in a fresh process each what the jobs run: featurize and score (grouped
by target task) one checkpoint of a tiny GPT (``trak``), average three checkpoints' scores (the same
file three times: ``datamodel``), and DsDm, DSIR and the classifier toward one target task (``select``). Prints each
process's peak RSS (``ru_maxrss``), the same after subtracting a process that only imports the modules
(the interpreter, torch, traker), and the ratio of the two pool sizes: memory that grew with the pool
would show a ratio near 10.

    python bench/datamodel_memory.py [--small 5000] [--window 65]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import tempfile
from pathlib import Path

import numpy as np

STAGES = ("imports", "trak", "datamodel", "select")


def build(work: Path, n: int, window: int) -> None:
    from proxyscale.datamodels.dataset import save_dataset, shard_spec

    rng = np.random.default_rng(0)
    shard = work / "shard.npy"
    np.save(shard, rng.integers(1, 256, n * window).astype(np.uint16))
    targets = rng.integers(1, 256, (8, window))
    mask = np.zeros_like(targets, dtype=bool)
    mask[:, -8:] = True
    task = {"setting": "lm", "vocab_size": 256, "context_length": window - 1, "targets": ["a", "b"]}
    parts = {"target_inputs": targets, "target_labels": mask, "target_task": np.repeat([0, 1], 4)}
    save_dataset({**parts, "train_origin": np.arange(n) * window}, {**task, "windows": shard_spec([shard], window)},
                 work / "dataset")  # fmt: skip


def stage(name: str, work: str, queue) -> None:
    import torch

    from proxyscale.datamodels import store
    from proxyscale.datamodels.datamodel import CheckpointScores, write_datamodel
    from proxyscale.datamodels.dataset import load_dataset
    from proxyscale.datamodels.tasks import make_task
    from proxyscale.selection.methods import select

    work = Path(work)
    data = load_dataset(work / "dataset")
    cpu = torch.device("cpu")
    if name == "trak":
        task = make_task(data.task)
        torch.manual_seed(0)
        model = task.make_model({"d_model": 16, "n_layers": 1, "n_heads": 2})
        store.featurize(model, task, data.train, 512, work / "store", 64, cpu)
        store.score(
            model, task, data.part("target"), 8, [work / "store"], work / "scores.npy", cpu, data["target_task"], 1e-3
        )
    elif name == "datamodel":
        q = store.load_q(work / "store")
        files = CheckpointScores([work / "scores.npy"] * 3, [q] * 3)  # three checkpoints' worth of reading
        write_datamodel(files, False, work / "tau.npy")
    elif name == "select":
        k = len(data.train) // 10
        for kind in ("dsdm", "dsir", "classifier"):
            select(kind, data, 1, k, 0, 10_000, work / "tau.npy" if kind == "dsdm" else None)
    queue.put(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)


def measure(n: int, window: int) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        build(Path(tmp), n, window)
        peaks = {}
        for name in STAGES:
            queue = ctx.Queue()
            child = ctx.Process(target=stage, args=(name, tmp, queue))
            child.start()
            child.join()
            if child.exitcode != 0:
                raise SystemExit(f"the {name} stage failed (exit code {child.exitcode}); its traceback is above")
            peaks[name] = queue.get()
    return peaks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=5_000)
    parser.add_argument("--window", type=int, default=65)
    args = parser.parse_args()
    sizes = (args.small, 10 * args.small)
    peaks = {n: measure(n, args.window) for n in sizes}
    mib = 2**20
    print(f"peak RSS in MiB (above an import-only process), pool of {sizes[0]:,} and {sizes[1]:,} windows")
    for name in STAGES[1:]:
        a, b = (peaks[n][name] for n in sizes)
        da, db = (peaks[n][name] - peaks[n]["imports"] for n in sizes)
        print(f"{name:>10}: {a / mib:7.0f} ({da / mib:6.0f})  {b / mib:7.0f} ({db / mib:6.0f})  ratio {b / a:5.2f} "
              f"({db / max(da, 1):5.2f} above imports) for 10x the pool")  # fmt: skip


if __name__ == "__main__":
    main()
