"""Seed noise of the scale-correlation experiment: how far a size's mean losses across training
distributions move when only its training seed changes, and what that bounds.

A size trained with n seeds (the config's ``seeds``) has n mean losses per (test set, distribution). From
them, per (test set, size):

- the seed-to-seed agreement: R^2 and decision accuracy of one seed's mean losses against another's across
  distributions, averaged over pairs of seeds. The reference's is the noise ceiling: a proxy cannot be
  expected to agree with one reference seed better than another reference seed does.
- the reliability of the n-seed mean: Spearman-Brown's n r / (1 + (n - 1) r) from the seed-to-seed
  correlation r, the share of the mean's variance across distributions that is not seed noise. Against
  the n-seed reference mean even a noise-free proxy reaches only R^2 = the reference's reliability, and
  Spearman's correction for attenuation divides a proxy's R^2 by both sides' reliabilities.
- the signal-to-noise ratio of Signal and Noise (Heineman et al. 2025, arXiv 2508.13144): signal is the
  relative dispersion of the distributions' (seed-mean) mean losses, max_ij |m_i - m_j| / mean m, noise
  the relative standard deviation over seeds, sigma / mean m. Their noise is one model's spread over its
  last checkpoints; here it is the spread over seeds, pooled over distributions (the root mean of each
  distribution's seed variance, with the n - 1 denominator since seeds are few, over the mean loss).

With one seed none of these is measured: NaN in the table (the signal excepted), said in words in the report.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from proxyscale import stats

NOISE_COLUMNS = ["test", "size", "seeds", "seed_r2", "seed_decision_accuracy", "seed_r", "reliability",
                 "signal", "noise", "snr"]  # fmt: skip


def seed_means(losses: pd.DataFrame):
    """(test, size, mean losses) of every (test set, size): its mean loss per training distribution (rows,
    sorted) and seed (columns), from the per-sample ``losses`` (columns dist, size, seed, test, loss)."""
    means = losses.groupby(["test", "size", "dist", "seed"])["loss"].mean()
    for (test, size), block in means.groupby(level=["test", "size"]):
        yield test, size, block.droplevel(["test", "size"]).unstack("seed").to_numpy()


def between_seeds(means: np.ndarray, statistic) -> float:
    """``statistic`` of one seed's mean losses against another's (columns of ``means``), averaged over the
    pairs of seeds; NaN with one seed."""
    pairs = list(itertools.combinations(range(means.shape[1]), 2))
    if not pairs:
        return float("nan")
    return float(np.mean([statistic(means[:, i], means[:, j]) for i, j in pairs]))


def spearman_brown(r: float, n: int) -> float:
    """Reliability of the mean of ``n`` seeds given the correlation ``r`` between two single seeds:
    n r / (1 + (n - 1) r); 0 where r <= 0 (the seeds share no ordering of the distributions), NaN where r is."""
    if r <= 0:
        return 0.0
    return n * r / (1 + (n - 1) * r)


def signal_to_noise(means: np.ndarray) -> tuple[float, float, float]:
    """(signal, noise, SNR) of mean losses (distributions x seeds), as defined in the module docstring;
    noise and SNR are NaN with one seed, and the SNR is infinite where the seeds agree exactly."""
    per_dist = means.mean(1)
    signal = float(np.ptp(per_dist) / per_dist.mean())
    if means.shape[1] < 2:
        return signal, float("nan"), float("nan")
    noise = float(np.sqrt(means.var(axis=1, ddof=1).mean()) / means.mean())
    return signal, noise, signal / noise if noise > 0 else float("inf")


def noise_table(losses: pd.DataFrame) -> pd.DataFrame:
    """Per (test set, size): its seeds, the seed-to-seed R^2, decision accuracy and correlation (r), the
    reliability of its n-seed mean, and Signal and Noise's signal, noise and SNR (:data:`NOISE_COLUMNS`)."""
    rows = []
    for test, size, means in seed_means(losses):
        n = means.shape[1]
        r = between_seeds(means, stats.pearson)
        signal, noise, snr = signal_to_noise(means)
        rows.append(
            {"test": test, "size": size, "seeds": n, "seed_r2": between_seeds(means, stats.r2),
             "seed_decision_accuracy": between_seeds(means, stats.decision_accuracy), "seed_r": r,
             "reliability": spearman_brown(r, n) if n > 1 else float("nan"),
             "signal": signal, "noise": noise, "snr": snr}
        )  # fmt: skip
    return pd.DataFrame(rows, columns=NOISE_COLUMNS)


def with_ceilings(summary: pd.DataFrame, noise: pd.DataFrame, reference: str) -> pd.DataFrame:
    """The summary (per test set and proxy, against the seed-mean reference) with what seed noise bounds:

    - ``ceiling_r2``, ``ceiling_decision_accuracy``: the reference's seed-to-seed values;
    - ``ref_reliability``, ``proxy_reliability``: each side's n-seed reliability (NaN with one seed);
    - ``r2_bound``: proxy_reliability x ref_reliability, a side with one seed counted as 1: the R^2 of a
      proxy whose mean losses differ from the reference's only by the measured seed noise (a proxy with
      one seed is held to the noise-free bound, the reference's reliability);
    - ``r2_corrected``: R^2 / r2_bound, Spearman's correction for attenuation on R^2 (uncorrected on a
      side with one seed; NaN where a reliability is 0);
    - ``at_ceiling``: with a measured ceiling (the reference has 2 or more seeds), whether the proxy's
      losses rise with the reference's and the upper end of its R^2 interval reaches r2_bound (its
      agreement is as good as seed noise lets one tell); never where r2_bound is 0 (the reference's seeds
      share no ordering of the distributions: nothing to reach); missing without a ceiling."""
    by_size = noise.set_index(["test", "size"])
    ref = by_size.xs(reference, level="size")
    keys = pd.MultiIndex.from_frame(summary[["test", "size"]])
    proxy_reliability = by_size["reliability"].reindex(keys).to_numpy()
    ref_reliability = summary["test"].map(ref["reliability"]).to_numpy()
    bound = np.nan_to_num(proxy_reliability, nan=1.0) * np.nan_to_num(ref_reliability, nan=1.0)
    measured = summary["test"].map(ref["seeds"]).to_numpy() > 1
    reaches = (summary["pearson"] > 0).to_numpy() & (summary["r2_hi"].to_numpy() >= bound) & (bound > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        corrected = np.where(bound > 0, summary["r2"].to_numpy() / bound, np.nan)
    return summary.assign(
        ceiling_r2=summary["test"].map(ref["seed_r2"]).to_numpy(),
        ceiling_decision_accuracy=summary["test"].map(ref["seed_decision_accuracy"]).to_numpy(),
        ref_reliability=ref_reliability,
        proxy_reliability=proxy_reliability,
        r2_bound=bound,
        r2_corrected=corrected,
        at_ceiling=pd.array([bool(r) if m else None for r, m in zip(reaches, measured)], dtype="boolean"),
    )
