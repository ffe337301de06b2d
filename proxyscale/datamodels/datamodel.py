"""Datamodel matrices from per-checkpoint TRAK scores, and how datamodels of different sizes agree.

A datamodel matrix has shape (n_train, n_targets): entry (i, j) is the weight of training example i
for target j. Averaging over the M checkpoints of a size gives the paper's equation 17; the paper
drops the out-to-loss term Q, which ``q_term`` puts back (each training example's weights multiplied
by its Q averaged over checkpoints, as traker's ``finalize_scores`` does).
"""

from __future__ import annotations

import numpy as np
from scipy import stats as sps


def datamodel(scores: list[np.ndarray], qs: list[np.ndarray], q_term: bool) -> np.ndarray:
    """Average of the checkpoints' raw scores, times the averaged Q when ``q_term``."""
    if not scores:
        raise ValueError("a datamodel needs at least one checkpoint's scores")
    tau = np.mean(np.stack(scores), axis=0)
    if q_term:
        tau = tau * np.mean(np.stack(qs), axis=0)[:, None]
    return tau.astype(np.float32)


def top_k(tau: np.ndarray, k: int, largest: bool = True) -> np.ndarray:
    """Indices (k, n_targets) of each target's k largest (or smallest) weights, strongest first."""
    order = np.argsort(-tau if largest else tau, axis=0, kind="stable")
    return order[:k]


def top_k_overlap(tau_a: np.ndarray, tau_b: np.ndarray, k: int, largest: bool = True) -> np.ndarray:
    """Per target, the fraction of the k strongest examples two datamodels share."""
    a, b = top_k(tau_a, k, largest), top_k(tau_b, k, largest)
    return np.array([len(np.intersect1d(a[:, j], b[:, j])) / k for j in range(tau_a.shape[1])])


def rank_correlation(tau_a: np.ndarray, tau_b: np.ndarray) -> np.ndarray:
    """Per target, the Spearman correlation of two datamodels' weights over the training set."""
    ra = sps.rankdata(tau_a, axis=0)
    rb = sps.rankdata(tau_b, axis=0)
    ra -= ra.mean(0)
    rb -= rb.mean(0)
    return (ra * rb).sum(0) / np.sqrt((ra**2).sum(0) * (rb**2).sum(0))
