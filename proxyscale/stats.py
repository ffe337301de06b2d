"""Statistics of how well proxy losses predict reference losses.

R^2 here is the coefficient of determination of the least-squares line reference ~ a + b * proxy,
which for one predictor equals the squared Pearson correlation. Confidence intervals are percentile
bootstraps over the points (training distributions); leave-one-out prediction asks whether a line fit
on the other distributions predicts a held-out distribution's reference loss.
"""

from __future__ import annotations

import numpy as np
from scipy import stats as sps


def r2(x, y) -> float:
    """R^2 of the least-squares line y ~ a + b x (NaN when x or y is constant or n < 3)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1] ** 2)


def pearson(x, y) -> float:
    """Signed correlation of x and y (its sign is the slope's); NaN when x or y is constant or n < 3."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def decision_accuracy(x, y) -> float:
    """Share of pairs of points that x and y order the same way (DataDecide's decision accuracy).

    Each pair of training distributions is a decision "which one is better?": the proxy (x) gets it
    right when it orders the pair as the reference (y) does. Pairs tied in x or y (a bootstrap's
    repeated points) are left out; NaN when no pair is left.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    i, j = np.triu_indices(len(x), k=1)
    dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
    keep = (dx != 0) & (dy != 0)
    return float(np.mean(dx[keep] == dy[keep])) if keep.any() else float("nan")


def spearman(x, y) -> float:
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(sps.spearmanr(x, y).statistic)


def bootstrap_ci(x, y, statistic, n_boot: int, ci: float, seed: int = 0) -> tuple[float, float]:
    """Percentile interval of ``statistic(x[idx], y[idx])`` over resamples of the points.

    Resamples with fewer than 3 distinct points (where R^2 is undefined) are skipped.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(x), len(x))
        if len(np.unique(idx)) >= 3:
            values.append(statistic(x[idx], y[idx]))
    values = np.asarray(values)
    values = values[np.isfinite(values)]
    if not len(values):
        return float("nan"), float("nan")
    alpha = (1 - ci) / 2
    return float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha))


def leave_one_out(x, y) -> dict:
    """Predict each point from the line fit on the others.

    Returns the predictions, the mean absolute error, and the out-of-sample R^2 (1 - PRESS / SS_tot).
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    preds = np.empty_like(y)
    for i in range(len(x)):
        keep = np.arange(len(x)) != i
        slope, intercept = np.polyfit(x[keep], y[keep], 1)
        preds[i] = intercept + slope * x[i]
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    press = float(np.sum((y - preds) ** 2))
    return {
        "predictions": preds,
        "mae": float(np.mean(np.abs(y - preds))),
        "r2": 1 - press / ss_tot if ss_tot > 0 else float("nan"),
    }


def per_sample_r2(proxy: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """R^2 across distributions for every sample: inputs are (n_distributions, n_samples)."""
    p = proxy - proxy.mean(0)
    r = reference - reference.mean(0)
    denom = np.sqrt((p**2).sum(0) * (r**2).sum(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = (p * r).sum(0) / denom
    return corr**2


def per_sample_r2_null(proxy: np.ndarray, reference: np.ndarray, n_perm: int, seed: int = 0) -> np.ndarray:
    """Per-sample R^2 when the proxy's distributions are shuffled against the reference's.

    Each permutation pairs every sample's proxy losses with the reference's losses on other
    distributions (the same shuffle for every sample), so what remains is chance agreement: about
    1 / (n_distributions - 1) for unrelated losses. Returns all (n_perm * n_samples) null values.
    """
    rng = np.random.default_rng(seed)
    n = len(proxy)
    return np.concatenate([per_sample_r2(proxy[rng.permutation(n)], reference) for _ in range(n_perm)])


def mean_ci(values, n_boot: int, ci: float, seed: int = 0) -> tuple[float, float, float]:
    """Mean of the finite values and its percentile bootstrap interval (resampling the values)."""
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    if not len(values):
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (n_boot, len(values)))].mean(1)
    alpha = (1 - ci) / 2
    return float(values.mean()), float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))
