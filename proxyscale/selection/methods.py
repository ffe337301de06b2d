"""Dataset selection from a candidate pool toward target tasks (the paper's section 3.2, appendix A.4).

- **DsDm** (algorithm 3): with a datamodel matrix tau (n_pool, n_targets) whose entry (i, j) is how
  much including pool example i raises the model's output (margin, so lowers the loss) on target j,
  average over targets and keep the k examples with the largest average: the subset the datamodel
  predicts gives the lowest target loss. **Bot-DsDm** keeps the k smallest.
- **DSIR** (Xie et al. 2023): hashed unigram and bigram features; each pool example's importance
  log-weight is log p_target(features) - log p_pool(features) under smoothed bag-of-hashed-n-gram
  models; k examples are resampled without replacement by the Gumbel top-k trick.
- **Classifier**: a logistic regression on the same hashed features separating target from pool
  examples; keep the k pool examples it finds most target-like.
- **Random**: k examples uniformly, seeded.

Every method keeps the same number k of pool windows: by default the reference's Chinchilla budget
(:func:`selection_size`), so the reference retrained on a selection makes one pass over it, as in the
paper; ``selection.fraction`` overrides it with a share of the pool.

Every selector returns (indices of the k selected examples, a score per pool example);
:func:`select` runs one by name on the selection dataset (:mod:`proxyscale.selection.dataset`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from proxyscale.datamodels.budget import budget_windows, describe_budget
from proxyscale.datamodels.tasks import LMTask
from proxyscale.errors import ConfigError


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


def dsdm(tau: np.ndarray, k: int, bottom: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """DsDm (``bottom=False``) or Bot-DsDm: the k pool examples with the largest (smallest) mean weight."""
    _check_k(tau.shape[0], k)
    score = tau.mean(axis=1)
    order = np.argsort(score if bottom else -score, kind="stable")
    return np.sort(order[:k]), score


def random_subset(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    _check_k(n, k)
    score = np.random.default_rng(seed).random(n)
    return np.sort(np.argsort(-score)[:k]), score


def hashed_ngrams(sequences: list[np.ndarray], buckets: int) -> np.ndarray:
    """Counts of hashed unigrams and bigrams of token sequences, shape (n, buckets)."""
    out = np.zeros((len(sequences), buckets), dtype=np.float32)
    for row, seq in enumerate(sequences):
        seq = np.asarray(seq, dtype=np.int64)
        uni = (seq * 1_000_003) % buckets
        bi = ((seq[:-1] * 1_000_003 + seq[1:] * 998_244_353 + 7) % buckets) if len(seq) > 1 else np.empty(0, np.int64)
        out[row] = np.bincount(np.concatenate([uni, bi]), minlength=buckets)
    return out


def dsir(
    pool: np.ndarray, target: np.ndarray, k: int, seed: int, smoothing: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """DSIR on hashed n-gram counts (``pool`` and ``target`` from :func:`hashed_ngrams`)."""
    _check_k(len(pool), k)
    p_target = target.sum(0) + smoothing
    p_pool = pool.sum(0) + smoothing
    log_ratio = np.log(p_target / p_target.sum()) - np.log(p_pool / p_pool.sum())
    log_weight = pool @ log_ratio
    gumbel = np.random.default_rng(seed).gumbel(size=len(pool))
    return np.sort(np.argsort(-(log_weight + gumbel))[:k]), log_weight


def classifier(
    pool: np.ndarray, target: np.ndarray, k: int, l2: float = 1e-4, steps: int = 500, lr: float = 5.0
) -> tuple[np.ndarray, np.ndarray]:
    """Logistic regression (target = 1, pool = 0) on L2-normalised hashed n-gram counts, fit by
    full-batch gradient descent with classes weighted equally; keep the k most target-like. The
    features are sparse (a window has at most two n-grams per token), so they are held as CSR."""
    from scipy import sparse  # here, so the retraining jobs that read selections need not load scipy

    _check_k(len(pool), k)

    def normalise(x):
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    x = sparse.csr_matrix(np.vstack([normalise(pool), normalise(target)]).astype(np.float64))
    y = np.concatenate([np.zeros(len(pool)), np.ones(len(target))])
    weight = np.where(y == 1, 0.5 / len(target), 0.5 / len(pool))
    w, b = np.zeros(x.shape[1]), 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(x @ w + b)))
        g = weight * (p - y)
        w -= lr * (x.T @ g + l2 * w)
        b -= lr * g.sum()
    score = x[: len(pool)] @ w + b
    return np.sort(np.argsort(-score, kind="stable")[:k]), score


def example_sequences(tokens: np.ndarray, mask: np.ndarray) -> list[np.ndarray]:
    """The text of each (tokens, mask) example: its tokens up to the last scored one (a target's
    context and continuation, a pool window's every token)."""
    ends = mask.shape[1] - np.argmax(mask[:, ::-1], axis=1)
    return [row[:end] for row, end in zip(tokens, ends)]


def select(
    kind: str, arrays: dict, target: int, k: int, seed: int, buckets: int, tau: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Run selector ``kind`` toward target task ``target`` of a selection dataset.

    ``tau`` is the datamodel (pool, all target examples) of a size, needed by DsDm and Bot-DsDm;
    its columns of this target task are used.
    """
    n = len(arrays["train_inputs"])
    rows = arrays["target_task"] == target
    if kind in ("dsdm", "bot_dsdm"):
        if tau is None:
            raise ConfigError(f"selection: {kind} needs a datamodel")
        return dsdm(tau[:, rows], k, bottom=kind == "bot_dsdm")
    if kind == "random":
        return random_subset(n, k, seed)
    pool = hashed_ngrams(example_sequences(arrays["train_inputs"], arrays["train_labels"]), buckets)
    goal = hashed_ngrams(example_sequences(arrays["target_inputs"][rows], arrays["target_labels"][rows]), buckets)
    if kind == "dsir":
        return dsir(pool, goal, k, seed)
    if kind == "classifier":
        return classifier(pool, goal, k)
    raise ConfigError(f"selection: '{kind}' is not a selection method (dsdm, bot_dsdm, dsir, classifier, random)")


def subset_frame(indices: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
    """One row per pool example: its index, its selector score and whether it is selected."""
    selected = np.zeros(len(scores), dtype=bool)
    selected[indices] = True
    return pd.DataFrame(
        {"pool_index": np.arange(len(scores)), "score": scores.astype(np.float64), "selected": selected}
    )


def selected_indices(frame: pd.DataFrame) -> np.ndarray:
    return frame.loc[frame["selected"], "pool_index"].to_numpy()
