"""The dataset file of the datamodel pipeline, and the pieces both experiments build theirs from.

A dataset is one ``.npz``: the four arrays of :mod:`proxyscale.datamodels.tasks` (``train_inputs``,
``train_labels``, ``target_inputs``, ``target_labels``), the origin index of every example, any
experiment-specific arrays, and the task spec as JSON, so later jobs rebuild the same task from the
file alone. The attribution experiment builds it in :mod:`proxyscale.attribution.dataset`, the
selection experiment in :mod:`proxyscale.selection.dataset`; both cut language examples with
:func:`lm_windows` (training windows, every position scored) and :func:`lm_examples` (a test set's
gold examples fitted to the context, only the continuation scored).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from proxyscale.artifacts import damaged, load_npz
from proxyscale.data.prepare import fit_to_context
from proxyscale.errors import ConfigError
from proxyscale.io import save_npz

ARRAYS = ("train_inputs", "train_labels", "target_inputs", "target_labels")


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


def lm_windows(streams: list[np.ndarray], n: int, window: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` non-overlapping windows of ``window`` tokens from the concatenated streams, seeded."""
    tokens = np.concatenate(streams)
    available = len(tokens) // window
    chosen, _ = split_indices(available, n, 0, seed, f"windows of {window} tokens")
    origin = chosen * window
    return tokens[origin[:, None] + np.arange(window)], origin


def window_labels(windows: np.ndarray) -> np.ndarray:
    """The scored positions of training windows: every token but the first (which nothing predicts)."""
    mask = np.ones_like(windows, dtype=bool)
    mask[:, 0] = False
    return mask


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


def save_dataset(arrays: dict, task: dict, path: str | Path) -> None:
    """Write the arrays and the task spec (as JSON) to one ``.npz``, atomically."""
    save_npz(path, task=np.asarray(json.dumps(task)), **arrays)


def load_dataset(path: str | Path) -> tuple[dict, dict]:
    """Arrays and task spec saved by :func:`save_dataset`."""
    arrays = load_npz(path)
    try:
        task = json.loads(str(arrays.pop("task")))
    except (KeyError, ValueError):
        raise damaged(path, "no task spec") from None
    missing = [k for k in ARRAYS if k not in arrays]
    if missing:
        raise damaged(path, f"attribution dataset lacks {', '.join(missing)}")
    return arrays, task
