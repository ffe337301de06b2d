"""The datamodel pipeline on a dataset ten times larger than this machine's memory.

A token shard of ten times the available memory (a sparse file: its virtual size, not disk) is cut into
a datamodel dataset of a million windows drawn from all it holds; a slice of that dataset (a dataset directory over the
same shard) is featurized, scored, averaged into a datamodel and selected from (DsDm and DSIR), all in
a child process whose peak resident memory is measured. The bound asserted, :data:`PEAK_RSS_LIMIT`, is
under a hundredth of the dataset's size: a job that read the shard or held every window could not
pass it.
"""

from __future__ import annotations

import multiprocessing as mp
import resource
from pathlib import Path

import numpy as np

PEAK_RSS_LIMIT = 2 * 2**30
WINDOW = 2049  # the paper's 2,048-token context plus the next token
SLICE = 48
FULL = 1_000_000


def _available_memory() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def _sparse_shard(path: Path, tokens: int) -> None:
    """A ``.npy`` of ``tokens`` uint16 tokens, made at its full size without writing them (zeros)."""
    from proxyscale.io import RowFile

    RowFile(path, (tokens,), np.uint16)


def _write_tokens(path: Path, start: int, tokens: np.ndarray) -> None:
    from proxyscale.artifacts import npy_layout

    offset = npy_layout(path)[2]
    with open(path, "r+b") as f:
        f.seek(offset + 2 * start)
        f.write(tokens.astype(np.uint16).tobytes())


def _pipeline(work: str, queue) -> None:
    """Build, featurize, score and select in this (child) process; put its findings on ``queue``."""
    import torch

    from proxyscale.datamodels import store
    from proxyscale.datamodels.datamodel import CheckpointScores, write_datamodel
    from proxyscale.datamodels.dataset import lm_window_starts, load_dataset, save_dataset, shard_spec
    from proxyscale.datamodels.tasks import LMTask, make_task
    from proxyscale.selection.methods import select

    torch.manual_seed(0)
    work = Path(work)
    shard = work / "shard.npy"
    windows = shard_spec([shard], WINDOW)
    n = windows["lengths"][0] // WINDOW
    rng = np.random.default_rng(0)
    targets = rng.integers(1, 64, (4, WINDOW))
    target_mask = np.zeros_like(targets, dtype=bool)
    target_mask[:, -16:] = True
    task = {"setting": "lm", "vocab_size": 64, "context_length": WINDOW - 1, "targets": ["a", "b"], "windows": windows}
    parts = {"target_inputs": targets, "target_labels": target_mask, "target_task": np.array([0, 0, 1, 1])}
    starts = lm_window_starts(windows["lengths"], FULL, WINDOW, seed=0)  # drawn from all n windows of the shard
    save_dataset({**parts, "train_origin": starts}, task, work / "full")
    full = load_dataset(work / "full")
    chosen = np.sort(rng.choice(len(full.train), SLICE, replace=False))
    for start in full["train_origin"][chosen]:  # the slice's windows get text (the rest of the shard is zeros)
        _write_tokens(shard, int(start), rng.integers(1, 64, WINDOW))
    save_dataset({**parts, "train_origin": full["train_origin"][chosen]}, task, work / "slice")
    data = load_dataset(work / "slice")

    lm = make_task(data.task)
    assert isinstance(lm, LMTask)
    model = lm.make_model({"d_model": 16, "n_layers": 1, "n_heads": 2})
    cpu = torch.device("cpu")
    shards = [work / f"{i}-of-3" for i in range(3)]  # featurized in three jobs, as trak.shards: 3 runs it
    for i, shard_dir in enumerate(shards):
        rows = store.shard_rows(len(data.train), i, len(shards))
        store.featurize(model, lm, data.train, 16, shard_dir, 32, cpu, micro_batch_size=4, rows=rows, with_q=False)
    store.score(model, lm, data.part("target"), 4, shards, work / "scores.npy", cpu, data["target_task"], 1e-3)
    write_datamodel(CheckpointScores([work / "scores.npy"], []), False, work / "tau.npy")
    dsdm, _ = select("dsdm", data, 1, 8, 0, 512, work / "tau.npy")
    dsir, _ = select("dsir", data, 1, 8, 0, 512)
    tau = np.load(work / "tau.npy")
    queue.put(
        {
            "n_windows": n,
            "drawn": len(full.train),
            "spread": int(full["train_origin"][-1]) > shard.stat().st_size // 2 // 2,
            "tau_shape": tau.shape,
            "dsdm_is_top": sorted(np.argsort(-tau[:, 1], kind="stable")[:8].tolist()) == dsdm.tolist(),
            "dsir": len(dsir),
            "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        }
    )


def test_a_dataset_ten_times_larger_than_memory_is_featurized_scored_and_selected_in_bounded_memory(tmp_path):
    virtual = 10 * _available_memory()
    tokens = virtual // 2 + 1
    _sparse_shard(tmp_path / "shard.npy", tokens)
    shard_bytes = (tmp_path / "shard.npy").stat().st_size
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_pipeline, args=(str(tmp_path), queue))
    child.start()
    found = queue.get(timeout=600)
    child.join(timeout=60)
    assert child.exitcode == 0
    # the windows the shard's tokens hold (its bytes less the .npy header, which could tip a file-size
    # count past a window boundary, depending on how much memory this machine has free)
    assert shard_bytes >= virtual and found["n_windows"] == tokens // WINDOW
    assert found["drawn"] == FULL and found["spread"]  # drawn from the whole shard, not its head
    assert found["tau_shape"] == (SLICE, 2) and found["dsdm_is_top"] and found["dsir"] == 8
    print(
        f"dataset {shard_bytes / 2**30:.0f} GiB virtual ({found['n_windows']:,} windows of {WINDOW} tokens), "
        f"{virtual / 10 / 2**30:.1f} GiB available; peak RSS {found['peak_rss'] / 2**30:.2f} GiB"
    )
    assert found["peak_rss"] < PEAK_RSS_LIMIT
