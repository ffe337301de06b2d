"""The attribution experiment's dataset: training examples and target examples, and its description.

Vision: images and labels from MNIST IDX files (the embedded default) or CIFAR-10 (its python batches),
optionally downsampled, split by a seeded permutation into ``n_train`` training and ``n_targets``
disjoint target examples; the task records the training images' per-channel mean and standard
deviation, with which every model's inputs are standardised. Language: ``n_train`` non-overlapping
windows of ``context_length + 1`` tokens drawn from a distribution's token shards (every position
scored; recorded by their starts in the shards, not copied), and ``n_targets`` gold examples of a
tokenised test set fitted to the context (only the continuation scored). The format is the datamodel
pipeline's (:mod:`proxyscale.datamodels.dataset`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from proxyscale.data.images import downsample, load_images
from proxyscale.datamodels.dataset import gold_examples, lm_examples, lm_window_starts, shard_spec, split_indices
from proxyscale.models.vision import pixel_stats


def vision_dataset(spec: dict, n_train: int, n_targets: int, seed: int) -> tuple[dict, dict]:
    """Arrays and task spec for the vision setting (``spec`` is config ``attribution.vision``)."""
    images, labels = load_images(spec["dataset"])
    images = downsample(images, spec.get("downsample", 1))
    train, targets = split_indices(len(images), n_train, n_targets, seed, "images")
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
    task["pixel_mean"], task["pixel_std"] = pixel_stats(arrays["train_inputs"])
    return arrays, task


def lm_targets(
    frame: pd.DataFrame, n: int, context_length: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` seeded gold examples of a tokenised test set as (tokens, mask, example ids)."""
    gold = gold_examples(frame)
    _, chosen = split_indices(len(gold), 0, n, seed, "test examples")
    return *lm_examples(gold, chosen, context_length), gold["example_id"].to_numpy()[chosen]


def lm_dataset(
    shards: list[str],
    targets: pd.DataFrame,
    spec: dict,
    vocab_size: int,
    n_train: int,
    n_targets: int,
    seed: int,
) -> tuple[dict, dict]:
    """Arrays and task spec for the language setting (``spec`` is config ``attribution.lm``; ``shards``
    the paths of the distribution's token shards)."""
    T = spec["context_length"]
    windows = shard_spec(shards, T + 1)
    train_origin = lm_window_starts(windows["lengths"], n_train, T + 1, seed)
    target_tokens, target_mask, target_origin = lm_targets(targets, n_targets, T, seed)
    arrays = {
        "target_inputs": target_tokens,
        "target_labels": target_mask,
        "train_origin": train_origin,
        "target_origin": np.asarray(target_origin),
    }
    task = {"setting": "lm", "vocab_size": vocab_size, "context_length": T, "tokenizer": spec["tokenizer"]}
    return arrays, {**task, "windows": windows}


def describe(task_spec: dict) -> str:
    """One phrase for the report: the model family and what it sees."""
    if task_spec["setting"] == "vision":
        shape = "x".join(map(str, task_spec["image_shape"]))
        return f"{task_spec['family']} on {shape} images, {task_spec['num_classes']} classes"
    return f"GPT on windows of {task_spec['context_length'] + 1} tokens"
