"""The dataset of the datamodel pipeline, and the pieces both experiments build theirs from.

A dataset is a directory: ``task.json`` (the task spec, so later jobs rebuild the same task from the
dataset alone) and one ``.npy`` per array, each read memory-mapped, so a job touches only the rows it
uses. Images and a test set's target examples are stored as arrays (``{part}_inputs``,
``{part}_labels``); language-model training windows are not copied at all: ``train_origin`` holds the
start of each window in the concatenation of the token shards that ``task.json`` names (with their
lengths, checked when the dataset is opened), and :class:`proxyscale.datamodels.examples.Windows` reads
a window's tokens from the shards when a batch needs it. Building the pool of the paper's selection
experiment (80M windows of 2,048 tokens) therefore writes 640 MB of offsets, not 1.3 TB of windows.

The attribution experiment builds its dataset in :mod:`proxyscale.attribution.dataset`, the selection
experiment in :mod:`proxyscale.selection.dataset`; both cut language examples with
:func:`lm_window_starts` (training windows, every position scored) and :func:`lm_examples` (a test set's
gold examples fitted to the context, only the continuation scored).
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from proxyscale.artifacts import damaged, load_json, load_npy, npy_layout
from proxyscale.data.prepare import fit_to_context
from proxyscale.datamodels.examples import Arrays, Windows
from proxyscale.errors import ConfigError
from proxyscale.io import atomic_dir

TASK_FILE = "task.json"
PERMUTED_WINDOWS = 2**24  # windows (134 MB of int64) drawn from by a permutation of them all


def split_indices(
    n_available: int,
    n_train: int,
    n_targets: int,
    seed: int,
    what: str,
    where: str = "attribution: n_train + n_targets",
) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint sorted index sets of ``n_train`` and ``n_targets`` from ``range(n_available)``,
    by a seeded permutation; too few available is a config error naming ``where``."""
    if n_train + n_targets > n_available:
        raise ConfigError(f"{where} = {n_train + n_targets} exceeds the {n_available} {what} available")
    perm = np.random.default_rng(seed).permutation(n_available)
    return np.sort(perm[:n_train]), np.sort(perm[n_train : n_train + n_targets])


def lm_window_starts(lengths: list[int], n: int, window: int, seed: int) -> np.ndarray:
    """Starts of ``n`` non-overlapping windows of ``window`` tokens in the concatenation of streams of
    ``lengths`` tokens, seeded: the concatenation is cut into consecutive windows, ``n`` of which are
    drawn, sorted. Up to :data:`PERMUTED_WINDOWS` windows by a seeded permutation of them all (as
    :func:`split_indices`); beyond, by numpy's draw without replacement, which needs memory in ``n``
    only when ``n`` is a small share of them (Floyd's algorithm), so no job holds an index of every
    window of shards larger than memory."""
    available = sum(lengths) // window
    if available <= PERMUTED_WINDOWS:
        chosen, _ = split_indices(available, n, 0, seed, f"windows of {window} tokens")
    else:
        if n > available:
            split_indices(available, n, 0, seed, f"windows of {window} tokens")  # the config error
        chosen = np.sort(np.random.default_rng(seed).choice(available, n, replace=False))
    return chosen * window


def shard_spec(paths: list[str | Path], window: int) -> dict:
    """What ``task.json`` records of the shards windows are cut from: their paths, lengths and the window."""
    return {"shards": [str(p) for p in paths], "lengths": [npy_layout(p)[1] for p in paths], "window": window}


def lm_examples(gold: pd.DataFrame, chosen: np.ndarray, context_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Gold candidates ``chosen`` of a tokenised test set as (tokens, mask) windows of
    ``context_length + 1`` tokens, zero-padded; the mask marks the continuation (the scored part)."""
    tokens = np.zeros((len(chosen), context_length + 1), dtype=np.int64)
    mask = np.zeros((len(chosen), context_length + 1), dtype=bool)
    for row, i in enumerate(chosen):
        context, continuation = fit_to_context(gold["context_ids"][i], gold["continuation_ids"][i], context_length)
        seq = np.concatenate([context, continuation])
        tokens[row, : len(seq)] = seq
        mask[row, len(context) : len(seq)] = True
    return tokens, mask


def gold_examples(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["is_gold"]].reset_index(drop=True)


def save_dataset(arrays: dict[str, np.ndarray], task: dict, path: str | Path) -> None:
    """Write the arrays (one ``.npy`` each) and the task spec to the directory ``path``, atomically."""
    with atomic_dir(path) as tmp:
        for name, array in arrays.items():
            np.save(tmp / f"{name}.npy", np.asarray(array))
        (tmp / TASK_FILE).write_text(json.dumps(task, indent=1) + "\n")


class Dataset:
    """A dataset directory: its task spec (``task``), its arrays by name (memory-mapped, ``dataset[name]``),
    its training examples (``train``) and its parts of target examples (``part("target")``)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not (self.path / TASK_FILE).is_file():
            raise damaged(self.path, f"no {TASK_FILE}: not a dataset directory")
        self.task = load_json(self.path / TASK_FILE)

    def __contains__(self, name: str) -> bool:
        return (self.path / f"{name}.npy").is_file()

    def __getitem__(self, name: str) -> np.ndarray:
        return load_npy(self.path / f"{name}.npy", mmap=True)

    @cached_property
    def train(self) -> Arrays | Windows:
        """The training examples: windows of the shards, or stored arrays (images)."""
        windows = self.task.get("windows")
        if windows is None:
            return self.part("train")
        for path, length in zip(windows["shards"], windows["lengths"]):
            if npy_layout(path)[1] != length:
                raise damaged(self.path, f"{path} has changed since the dataset was built from it")
        return Windows(windows["shards"], self["train_origin"], windows["window"])

    def part(self, name: str) -> Arrays:
        """Examples stored as arrays: ``{name}_inputs`` and ``{name}_labels``."""
        return Arrays(self[f"{name}_inputs"], self[f"{name}_labels"])


def load_dataset(path: str | Path) -> Dataset:
    """The dataset directory written by :func:`save_dataset`."""
    return Dataset(path)
