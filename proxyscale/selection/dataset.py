"""The selection experiment's dataset: a pool of candidate windows and the target tasks' examples.

The training examples are a pool of windows cut from the sources' token shards (``train_source``
indexes ``task["pool_sources"]``), and each target task is split into a target part (used to select)
and a holdout part (used to judge) that shares no passage with it (:func:`target_split`, its own
artifact, which the correlation experiment also reads to leave the target part out of its evaluation);
``target_task`` and ``holdout_task`` index ``task["targets"]``. The file format is the datamodel
pipeline's (:mod:`proxyscale.datamodels.dataset`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from proxyscale.data.testsets import split_by_passage
from proxyscale.datamodels.dataset import gold_examples, lm_examples, lm_window_starts, shard_spec

PARTS = ("target", "holdout")


def target_split(
    frame: pd.DataFrame, n_targets: int, n_holdout: int, seed: int, name: str, max_examples: int | None = None
) -> pd.DataFrame:
    """One row per gold example of a tokenised test set kept by the split: ``example_id``, ``passage``
    and ``part`` (target or holdout); the parts share no passage. ``max_examples`` (the test set's cap,
    ``evaluation.max_examples``) is named in the error when the parts do not fit."""
    gold = gold_examples(frame)
    more = f", or raise evaluation.max_examples ({max_examples})" if max_examples is not None else ""
    keys = ("selection.n_targets", "selection.n_holdout")
    chosen = split_by_passage(gold, n_targets, n_holdout, seed, keys, f"'{name}'", more)
    return pd.concat(
        [gold.loc[idx, ["example_id", "passage"]].assign(part=part) for part, idx in zip(PARTS, chosen)],
        ignore_index=True,
    )


def selection_dataset(
    shards: dict[str, str],
    targets: dict[str, pd.DataFrame],
    splits: dict[str, pd.DataFrame],
    spec: dict,
    vocab_size: int,
) -> tuple[dict, dict]:
    """Arrays and task spec for the selection experiment (``spec``: ``selection`` config plus the
    tokenizer): ``pool.size`` pool windows cut from the named sources' token shards (``shards``: name ->
    path; windows are recorded by their starts, ``train_source`` indexes ``task["pool_sources"]``), and
    per target task its target and holdout examples, as ``splits`` (:func:`target_split`) assigns them."""
    T, seed = spec["context_length"], spec["seed"]
    windows = shard_spec(list(shards.values()), T + 1)
    pool_origin = lm_window_starts(windows["lengths"], spec["pool"]["size"], T + 1, seed)
    ends = np.cumsum(windows["lengths"])
    parts = {part: ([], [], [], []) for part in PARTS}
    for t, (name, frame) in enumerate(targets.items()):
        gold = gold_examples(frame)
        row = pd.Series(np.arange(len(gold)), index=gold["example_id"])
        split = splits[name]
        for part in PARTS:
            idx = row[split.loc[split["part"] == part, "example_id"]].to_numpy()
            tokens, mask = lm_examples(gold, idx, T)
            for store, value in zip(
                parts[part], (tokens, mask, np.full(len(idx), t), gold["example_id"].to_numpy()[idx])
            ):
                store.append(value)
    arrays = {
        "train_origin": pool_origin,
        "train_source": np.searchsorted(ends, pool_origin, side="right").astype(np.int16),
    }
    for part, (tokens, mask, task_index, origin) in parts.items():
        arrays |= {
            f"{part}_inputs": np.concatenate(tokens),
            f"{part}_labels": np.concatenate(mask),
            f"{part}_task": np.concatenate(task_index),
            f"{part}_origin": np.concatenate(origin).astype(np.int64),
        }
    task = {
        "setting": "lm",
        "vocab_size": vocab_size,
        "context_length": T,
        "tokenizer": spec["tokenizer"],
        "targets": list(targets),
        "pool_sources": list(shards),
        "windows": windows,
    }
    return arrays, task
