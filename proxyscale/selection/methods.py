"""Dataset selection from a candidate pool toward target tasks (the paper's section 3.2, appendix A.4).

- **DsDm** (algorithm 3): with a datamodel matrix tau (n_pool, n_targets) whose entry (i, j) is how
  much including pool example i raises the model's output (margin, so lowers the loss) on target j,
  average over targets and keep the k examples with the largest average: the subset the datamodel
  predicts gives the lowest target loss. **Bot-DsDm** keeps the k smallest.
- **DSIR** (Xie et al. 2023): hashed unigram and bigram features; each pool example's importance
  log-weight is log p_target(features) - log p_pool(features) under smoothed bag-of-hashed-n-gram
  models; k examples are resampled without replacement by the Gumbel top-k trick.
- **Classifier**: a logistic regression on the same hashed features separating target from pool
  examples (fit on a seeded sample of the pool of at most :data:`CLASSIFIER_NGRAMS` n-grams: 8,190
  windows of 2,049 tokens, all of a small pool); keep the k pool examples it finds most target-like.

DSIR and the classifier stream the pool a block of windows at a time, with sparse n-gram counts, and
DsDm reads one column of the datamodel: a selection job holds a few pool-sized vectors, not the pool.
- **Random**: k examples uniformly, seeded.

Every method keeps the same number k of pool windows: by default the reference's Chinchilla budget
(:func:`selection_size`), so the reference retrained on a selection makes one pass over it, as in the
paper; ``selection.fraction`` overrides it with a share of the pool.

Every selector returns (indices of the k selected examples, a score per pool example); each method's
``*_selection`` function runs it on the selection dataset (:mod:`proxyscale.selection.dataset`), and
:func:`select` runs a method by name through its entry in :mod:`proxyscale.selection.registry`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from proxyscale.data.ngrams import CLASSIFIER_NGRAMS, POOL_BLOCK, hashed_ngrams, pool_blocks
from proxyscale.datamodels.budget import budget_windows, describe_budget
from proxyscale.datamodels.datamodel import datamodel_column
from proxyscale.datamodels.tasks import LMTask
from proxyscale.errors import ConfigError
from proxyscale.selection.registry import method


def selection_size(n_pool: int, fraction: float | None, task: LMTask, reference: dict, tokens_per_param: float) -> int:
    """Pool windows each method keeps: ``fraction`` of the pool, or (``fraction`` None) the windows of
    the reference size's Chinchilla budget, which must fit in the pool."""
    if fraction is not None:
        return max(1, round(fraction * n_pool))
    k = budget_windows(task, reference, tokens_per_param)
    if k > n_pool:
        raise ConfigError(
            f"selection.pool.size: {n_pool:,} windows cannot hold a selection of the reference's budget, "
            f"{describe_budget(task, reference, tokens_per_param)}; raise it or set selection.fraction"
        )
    return k


def _check_k(n: int, k: int) -> None:
    if not 0 < k <= n:
        raise ConfigError(f"selection: cannot keep {k} of {n} pool examples")


def dsdm(weights: np.ndarray, k: int, bottom: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """DsDm (``bottom=False``) or Bot-DsDm: the k pool examples with the largest (smallest) mean weight
    over the target examples (``weights``, one value per pool example)."""
    _check_k(len(weights), k)
    score = np.asarray(weights, dtype=np.float64)
    order = np.argsort(score if bottom else -score, kind="stable")
    return np.sort(order[:k]), score


def random_subset(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    _check_k(n, k)
    score = np.random.default_rng(seed).random(n)
    return np.sort(np.argsort(-score)[:k]), score


def dsir(blocks, n: int, target, k: int, seed: int, smoothing: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """DSIR on hashed n-gram counts: ``blocks()`` streams the pool's counts (:func:`pool_blocks`), twice
    (the pool's n-gram distribution, then each window's log importance weight), ``target`` holds the
    target examples' counts (:func:`hashed_ngrams`)."""
    _check_k(n, k)
    p_target = np.asarray(target.sum(0), dtype=np.float64).ravel() + smoothing
    p_pool = sum(np.asarray(counts.sum(0), dtype=np.float64).ravel() for _, counts in blocks()) + smoothing
    log_ratio = np.log(p_target / p_target.sum()) - np.log(p_pool / p_pool.sum())
    log_weight = np.empty(n)
    for rows, counts in blocks():
        log_weight[rows] = counts @ log_ratio
    gumbel = np.random.default_rng(seed).gumbel(size=n)
    return np.sort(np.argsort(-(log_weight + gumbel))[:k]), log_weight


def _normalise(counts):
    from scipy import sparse

    norms = np.sqrt(np.asarray(counts.multiply(counts).sum(1)).ravel())
    return sparse.diags(1 / np.maximum(norms, 1e-12)) @ counts


def classifier(
    blocks, n: int, sample, target, k: int, l2: float = 1e-4, steps: int = 500, lr: float = 5.0
) -> tuple[np.ndarray, np.ndarray]:
    """Logistic regression (target = 1, pool = 0) on L2-normalised hashed n-gram counts (sparse), fit by
    full-batch gradient descent with classes weighted equally on ``sample`` (the counts of a seeded
    sample of the pool, :data:`CLASSIFIER_NGRAMS` n-grams at most) and the target examples' counts; then
    every pool window of ``blocks()`` is scored and the k most target-like are kept."""
    from scipy import sparse  # here, so the retraining jobs that read selections need not load scipy

    _check_k(n, k)
    x = sparse.vstack([_normalise(sample), _normalise(target)]).tocsr().astype(np.float64)
    y = np.concatenate([np.zeros(sample.shape[0]), np.ones(target.shape[0])])
    weight = np.where(y == 1, 0.5 / target.shape[0], 0.5 / sample.shape[0])
    w, b = np.zeros(x.shape[1]), 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(x @ w + b)))
        g = weight * (p - y)
        w -= lr * (x.T @ g + l2 * w)
        b -= lr * g.sum()
    score = np.empty(n)
    for rows, counts in blocks():
        score[rows] = _normalise(counts) @ w + b
    return np.sort(np.argsort(-score, kind="stable")[:k]), score


def example_sequences(tokens: np.ndarray, mask: np.ndarray) -> list[np.ndarray]:
    """The text of each (tokens, mask) example: its tokens up to the last scored one (a target's
    context and continuation, a pool window's every token)."""
    ends = mask.shape[1] - np.argmax(mask[:, ::-1], axis=1)
    return [row[:end] for row, end in zip(tokens, ends)]


def dsdm_selection(data, target: int, k: int, seed: int, buckets: int, datamodel):
    return dsdm(datamodel_column(datamodel, target), k)


def bot_dsdm_selection(data, target: int, k: int, seed: int, buckets: int, datamodel):
    return dsdm(datamodel_column(datamodel, target), k, bottom=True)


def random_selection(data, target: int, k: int, seed: int, buckets: int, datamodel):
    return random_subset(len(data.train), k, seed)


def _target_ngrams(data, target: int, buckets: int):
    """The hashed n-gram counts of the target task's target examples."""
    rows = np.flatnonzero(np.asarray(data["target_task"]) == target)
    return hashed_ngrams(example_sequences(*data.part("target").take(rows)), buckets)


def _pool_blocks(data, buckets: int):
    """``blocks()`` of the pool's hashed n-gram counts, for the selectors that stream it."""
    return lambda: pool_blocks(data.train, buckets, POOL_BLOCK)


def dsir_selection(data, target: int, k: int, seed: int, buckets: int, datamodel):
    return dsir(_pool_blocks(data, buckets), len(data.train), _target_ngrams(data, target, buckets), k, seed)


def classifier_selection(data, target: int, k: int, seed: int, buckets: int, datamodel):
    pool, n = data.train, len(data.train)
    size = max(1, min(n, CLASSIFIER_NGRAMS // (2 * pool.window - 1)))
    sample = np.sort(np.random.default_rng(seed).permutation(n)[:size])
    return classifier(
        _pool_blocks(data, buckets),
        n,
        hashed_ngrams(list(pool.tokens(sample)), buckets),
        _target_ngrams(data, target, buckets),
        k,
    )


def select(
    kind: str, data, target: int, k: int, seed: int, buckets: int, datamodel=None
) -> tuple[np.ndarray, np.ndarray]:
    """Run the selector of method ``kind`` (:data:`proxyscale.selection.registry.METHODS`) toward target
    task ``target`` of a selection dataset (:class:`proxyscale.datamodels.dataset.Dataset`), streaming its
    pool. ``datamodel`` is the path of a size's selection datamodel (pool, target tasks), which the
    methods that select with one need; its column of this target task is used."""
    entry = method(kind)
    if entry.datamodel and datamodel is None:
        raise ConfigError(f"selection: {kind} needs a datamodel")
    return globals()[entry.selector](data, target, k, seed, buckets, datamodel)


def subset_frame(indices: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
    """One row per pool example: its index, its selector score and whether it is selected."""
    selected = np.zeros(len(scores), dtype=bool)
    selected[indices] = True
    return pd.DataFrame(
        {"pool_index": np.arange(len(scores)), "score": scores.astype(np.float64), "selected": selected}
    )


def selected_indices(frame: pd.DataFrame) -> np.ndarray:
    return frame.loc[frame["selected"], "pool_index"].to_numpy()
