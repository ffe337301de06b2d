"""Build and load the attribution dataset: training examples, target examples and the task spec.

Vision: images and labels from MNIST IDX files (the embedded default) or CIFAR-10 (torchvision),
optionally downsampled, split by a seeded permutation into ``n_train`` training and ``n_targets``
disjoint target examples. Language: ``n_train`` non-overlapping windows of ``context_length + 1``
tokens drawn from a distribution's token shards (every position scored), and ``n_targets`` gold
examples of a tokenised test set fitted to the context (only the continuation scored).

Selection (the DsDm experiment): the training examples are a pool of windows cut from the sources'
token shards, and each target task is split into a target part (selection) and a disjoint holdout
part (evaluation); ``target_task`` and ``holdout_task`` index ``task["targets"]``.

The artifact is one ``.npz``: the four arrays of :mod:`proxyscale.tasks`, the origin index of every
example, and the task spec as JSON, so later jobs rebuild the same task from the file alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from proxyscale.errors import ConfigError, DataError
from proxyscale.evaluate import fit_to_context
from proxyscale.io import atomic_path
from proxyscale.vision import downsample, load_cifar10, load_mnist

ARRAYS = ("train_inputs", "train_labels", "target_inputs", "target_labels")


def _split(n_available: int, n_train: int, n_targets: int, seed: int, what: str, where: str = "attribution: n_train + n_targets") -> tuple[np.ndarray, np.ndarray]:
    if n_train + n_targets > n_available:
        raise ConfigError(f"{where} = {n_train + n_targets} exceeds the {n_available} {what} available")
    perm = np.random.default_rng(seed).permutation(n_available)
    return np.sort(perm[:n_train]), np.sort(perm[n_train : n_train + n_targets])


def load_images(dataset: dict) -> tuple[np.ndarray, np.ndarray]:
    kind = dataset["kind"]
    if kind == "mnist":
        return load_mnist(dataset["images"], dataset["labels"])
    if kind == "cifar10":
        return load_cifar10(dataset["root"], train=dataset.get("split", "train") == "train")
    raise ConfigError(f"attribution.vision.dataset.kind: '{kind}' is not a dataset (mnist, cifar10)")


def vision_dataset(spec: dict, n_train: int, n_targets: int, seed: int) -> tuple[dict, dict]:
    """Arrays and task spec for the vision setting (``spec`` is config ``attribution.vision``)."""
    images, labels = load_images(spec["dataset"])
    images = downsample(images, spec.get("downsample", 1))
    train, targets = _split(len(images), n_train, n_targets, seed, "images")
    arrays = {
        "train_inputs": images[train],
        "train_labels": labels[train],
        "target_inputs": images[targets],
        "target_labels": labels[targets],
        "train_origin": train,
        "target_origin": targets,
    }
    task = {
        "setting": "vision",
        "family": spec["family"],
        "image_shape": list(images.shape[1:]),
        "num_classes": int(labels.max()) + 1,
    }
    return arrays, task


def lm_windows(streams: list[np.ndarray], n: int, window: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` non-overlapping windows of ``window`` tokens from the concatenated streams, seeded."""
    tokens = np.concatenate(streams)
    available = len(tokens) // window
    chosen, _ = _split(available, n, 0, seed, f"windows of {window} tokens")
    origin = chosen * window
    return tokens[origin[:, None] + np.arange(window)], origin


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


def lm_targets(frame: pd.DataFrame, n: int, context_length: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` seeded gold examples of a tokenised test set as (tokens, mask, example ids)."""
    gold = gold_examples(frame)
    _, chosen = _split(len(gold), 0, n, seed, "test examples")
    return *lm_examples(gold, chosen, context_length), gold["example_id"].to_numpy()[chosen]


def lm_dataset(streams: list[np.ndarray], targets: pd.DataFrame, spec: dict, vocab_size: int, n_train: int, n_targets: int, seed: int) -> tuple[dict, dict]:
    """Arrays and task spec for the language setting (``spec`` is config ``attribution.lm``)."""
    T = spec["context_length"]
    train_tokens, train_origin = lm_windows(streams, n_train, T + 1, seed)
    train_mask = np.ones_like(train_tokens, dtype=bool)
    train_mask[:, 0] = False
    target_tokens, target_mask, target_origin = lm_targets(targets, n_targets, T, seed)
    arrays = {
        "train_inputs": train_tokens,
        "train_labels": train_mask,
        "target_inputs": target_tokens,
        "target_labels": target_mask,
        "train_origin": train_origin,
        "target_origin": np.asarray(target_origin),
    }
    return arrays, {"setting": "lm", "vocab_size": vocab_size, "context_length": T, "tokenizer": spec["tokenizer"]}


def selection_dataset(streams: dict[str, np.ndarray], targets: dict[str, pd.DataFrame], spec: dict, vocab_size: int) -> tuple[dict, dict]:
    """Arrays and task spec for the selection experiment (``spec``: ``selection`` config plus the
    tokenizer): ``pool.size`` pool windows cut from the named source streams (``train_source``
    indexes ``task["pool_sources"]``), and per target task ``n_targets`` target and ``n_holdout``
    disjoint holdout examples."""
    T, seed = spec["context_length"], spec["seed"]
    pool, pool_origin = lm_windows(list(streams.values()), spec["pool"]["size"], T + 1, seed)
    ends = np.cumsum([len(s) for s in streams.values()])
    pool_mask = np.ones_like(pool, dtype=bool)
    pool_mask[:, 0] = False
    parts = {"target": ([], [], [], []), "holdout": ([], [], [], [])}
    for t, (name, frame) in enumerate(targets.items()):
        gold = gold_examples(frame)
        where = f"selection.n_targets + n_holdout for '{name}'"
        chosen = dict(zip(parts, _split(len(gold), spec["n_targets"], spec["n_holdout"], seed, "test examples", where)))
        for part, idx in chosen.items():
            tokens, mask = lm_examples(gold, idx, T)
            for store, value in zip(parts[part], (tokens, mask, np.full(len(idx), t), gold["example_id"].to_numpy()[idx])):
                store.append(value)
    arrays = {
        "train_inputs": pool,
        "train_labels": pool_mask,
        "train_origin": pool_origin,
        "train_source": np.searchsorted(ends, pool_origin, side="right"),
    }
    for part, (tokens, mask, task_index, origin) in parts.items():
        arrays |= {
            f"{part}_inputs": np.concatenate(tokens),
            f"{part}_labels": np.concatenate(mask),
            f"{part}_task": np.concatenate(task_index),
            f"{part}_origin": np.concatenate(origin).astype(np.int64),
        }
    task = {"setting": "lm", "vocab_size": vocab_size, "context_length": T, "tokenizer": spec["tokenizer"],
            "targets": list(targets), "pool_sources": list(streams)}
    return arrays, task


def save_dataset(arrays: dict, task: dict, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, task=np.asarray(json.dumps(task)), **arrays)


def load_dataset(path: str | Path) -> tuple[dict, dict]:
    """Arrays and task spec saved by :func:`save_dataset`."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files if k != "task"}
            task = json.loads(str(z["task"]))
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"{path}: not an attribution dataset ({exc})") from None
    missing = [k for k in ARRAYS if k not in arrays]
    if missing:
        raise DataError(f"{path}: attribution dataset lacks {', '.join(missing)}")
    return arrays, task
