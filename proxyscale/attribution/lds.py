"""The Linear Datamodeling Score (LDS, the paper's equation 2).

A datamodel assigns each training example i a weight tau_i(z) for a target z and predicts the output
of a model trained on a subset S as the sum of the weights of the examples in S. The LDS of the
datamodel is, averaged over targets, the Spearman correlation across subsets between those
predictions and the outputs of models actually retrained on the subsets.
"""

from __future__ import annotations

import numpy as np


def subset_mask(n_train: int, alpha: float, seed: int, index: int) -> np.ndarray:
    """Inclusion mask of LDS subset ``index``: exactly round(alpha * n) examples, chosen from
    (seed, index) alone so that adding subsets leaves the existing ones unchanged."""
    rng = np.random.default_rng([seed, index])
    mask = np.zeros(n_train, dtype=bool)
    mask[rng.choice(n_train, size=max(1, round(alpha * n_train)), replace=False)] = True
    return mask


def subset_seed(seed: int, index: int) -> int:
    """Training seed of the model on LDS subset ``index`` (distinct from the checkpoints' 0..M-1)."""
    return int(np.random.SeedSequence([seed, index, 1]).generate_state(1)[0])


def predicted_outputs(scores: np.ndarray, subsets: np.ndarray) -> np.ndarray:
    """Datamodel predictions, shape (n_subsets, n_targets).

    ``scores``: (n_train, n_targets) datamodel weights; ``subsets``: (n_subsets, n_train) boolean
    inclusion masks.
    """
    return subsets.astype(scores.dtype) @ scores


def lds_per_target(predicted: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Spearman correlation across subsets for every target (columns), NaN where undefined."""
    from scipy import stats as sps  # here, so the lds_subset training jobs need not load scipy

    if predicted.shape != actual.shape:
        raise ValueError(f"predicted {predicted.shape} and actual {actual.shape} outputs differ in shape")
    out = np.full(predicted.shape[1], np.nan)
    for j in range(predicted.shape[1]):
        if np.ptp(predicted[:, j]) > 0 and np.ptp(actual[:, j]) > 0:
            out[j] = sps.spearmanr(predicted[:, j], actual[:, j]).statistic
    return out


def lds(scores: np.ndarray, subsets: np.ndarray, actual: np.ndarray) -> float:
    """Mean over targets of the per-target LDS (targets where it is undefined are skipped)."""
    return float(np.nanmean(lds_per_target(predicted_outputs(scores, subsets), actual)))
