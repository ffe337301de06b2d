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


def nested_mean_ci(runs, weights, n_boot: int, ci: float, seed: int = 0) -> tuple[float, float, float]:
    """``sum_k weights[k] * mean(runs[k])`` and its percentile bootstrap interval over two sources of noise.

    ``runs[k]`` is (seeds, examples): one row per independent repetition of run k (a retraining seed),
    every run scored on the same examples (columns). Each resample draws the examples with replacement,
    the same ones for every run (paired), and within each run its seeds with replacement, so the
    interval covers both the examples' and the seeds' noise. One run with weight 1 is a mean; two with
    weights (1, -1) a paired difference. Examples where a run has a non-finite value are left out. The
    examples are drawn as :func:`mean_ci` draws them, so where every run's seeds agree (no seed noise,
    or one seed: none measured) the interval is :func:`mean_ci`'s on the seed-averaged values.
    """
    runs = [np.atleast_2d(np.asarray(r, float)) for r in runs]
    keep = np.logical_and.reduce([np.isfinite(r).all(0) for r in runs])
    runs = [r[:, keep] for r in runs]
    n = int(keep.sum())
    if not n:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    examples = rng.integers(0, n, (n_boot, n))
    per_example = np.zeros((n_boot, n))
    for w, r in zip(weights, runs):
        picks = rng.integers(0, len(r), (n_boot, len(r)))
        counts = (picks[:, :, None] == np.arange(len(r))).sum(1)  # (n_boot, seeds): times each seed is drawn
        per_example += w * (counts @ r) / len(r)
    means = np.take_along_axis(per_example, examples, 1).mean(1)
    estimate = sum(w * r.mean() for w, r in zip(weights, runs))
    alpha = (1 - ci) / 2
    return float(estimate), float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def wilson_interval(successes, n, ci: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of the binomial share ``successes / n`` (arrays alike; NaN where n is 0).

    Unlike the normal approximation it stays within [0, 1] and keeps its width at 0 or n successes,
    which is where a well-calibrated high probability puts most of its bins.
    """
    k, n = np.asarray(successes, float), np.asarray(n, float)
    z = sps.norm.ppf(0.5 + ci / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = k / n
        centre = (share + z**2 / (2 * n)) / (1 + z**2 / n)
        half = z / (1 + z**2 / n) * np.sqrt(share * (1 - share) / n + z**2 / (4 * n**2))
    return centre - half, centre + half
