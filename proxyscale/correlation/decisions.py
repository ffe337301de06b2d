"""A probability for each decision a proxy makes: will the reference order this pair of training
distributions as the proxy does?

A decision of a proxy on a test set is which of two training distributions gives the lower mean loss
there; it *held* when the reference (its mean over seeds of the loss over all examples) orders the pair
the same way. The probability is meant for use before the reference is trained, so it is built only
from what is known then:

1. **The proxy's own uncertainty.** A paired bootstrap over test examples (one resample of example
   indices per draw, shared by every distribution and size, since they are scored on the same
   examples) and, for a size with several seeds, over its seeds (one resample of seed indices per draw,
   shared by every distribution) gives the standard error of the proxy's gap; the standardized gap is
   ``z = gap / SE``.
2. **How proxy decisions transfer to the reference**, learned from *other* test sets whose reference
   outcomes are known: per proxy size, a probit model ``P(held) = Phi(a + b |z|)`` fit on the pairs of
   every other test set (leave-one-test-set-out cross-fitting), so no probability ever uses the
   reference's outcome on its own test set.

Why this model: if the reference's gap is the proxy's (times a positive factor) plus Gaussian
disagreement whose spread scales with the proxy's sampling noise, ``P(held)`` is exactly
``Phi(b |z|)``; the intercept ``a`` absorbs a share of decisions that fail or hold whatever their size.
On the embedded default run (6 test sets, 4 proxies, 11 distributions, one seed) its cross-fit log loss
was 0.279, against 0.298 with ``log |z|``, 0.291 with the gap over its test set and proxy's median gap,
and 0.371 for a constant.
The bootstrap alone (the share of resamples that keep the proxy's order, about ``Phi(|z|)``) says only
whether the *proxy* would decide the same on fresh examples, and is overconfident about the reference
whenever proxy and reference disagree beyond sampling noise; the transfer model calibrates it. Both
coefficients have a standard-normal prior (a ridge penalty), so a training set where every decision
held (or none did) still gives finite coefficients. With a single test set there is nothing to learn
the transfer from: the probability is then the bootstrap share, and the ``model`` column says so.

Ties: a pair the proxy's seed-mean losses tie exactly is no decision (``probability`` NaN); a pair the
reference ties is neither held nor failed (``held`` missing), as :func:`proxyscale.stats.decision_accuracy`
leaves such pairs out. A gap with no sampling spread at all (SE 0) has ``|z|`` infinite and gets the
model's limit there (1 for a positive slope); it is left out of the fit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import optimize, special
from scipy import stats as sps

from proxyscale import stats
from proxyscale.errors import DataError

BOOTSTRAP_MODEL = "bootstrap share (no other test set to learn the transfer from)"
PROBIT_MODEL = "probit on |z|, fit on the other test sets"
PRIOR_SD = 1.0  # standard deviation of the Gaussian prior on each probit coefficient


def _loss_cube(block: pd.DataFrame, test: str, size: str, dists: list, examples: pd.Index) -> np.ndarray:
    """The losses of one size on one test set as a (seeds, distributions, examples) array; every
    distribution must have every seed and example of the size, or the means would not be comparable."""
    wide = block.pivot_table(index=["seed", "dist"], columns="example_id", values="loss")
    seeds = wide.index.get_level_values("seed").unique()
    full = pd.MultiIndex.from_product([seeds, dists], names=["seed", "dist"])
    wide = wide.reindex(index=full, columns=examples)
    if wide.isna().to_numpy().any():
        raise DataError(
            f"losses of size {size} on test set {test} do not cover every (seed, distribution, example): "
            "decision probabilities need every distribution scored on the same examples with the same seeds"
        )
    return wide.to_numpy().reshape(len(seeds), len(dists), len(examples))


def _bootstrap_means(cube: np.ndarray, example_weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, distributions) seed-mean losses under a paired bootstrap: ``example_weights`` (n_boot,
    examples) are the resample counts of the examples, shared by all sizes; a size with several seeds also
    resamples its seeds (the same seeds for every distribution)."""
    n_seeds, n_dists, n_examples = cube.shape
    per_seed = (example_weights @ cube.reshape(-1, n_examples).T / n_examples).reshape(-1, n_seeds, n_dists)
    if n_seeds == 1:
        return per_seed[:, 0]
    seed_weights = rng.multinomial(n_seeds, np.full(n_seeds, 1 / n_seeds), size=len(example_weights))
    return np.einsum("bs,bsd->bd", seed_weights, per_seed) / n_seeds


def _same_order(a: np.ndarray, b: np.ndarray) -> pd.array:
    """Whether gaps ``a`` and ``b`` have the same sign; missing where either is 0 (a tie orders nothing)."""
    same = pd.array(np.sign(a) == np.sign(b), dtype="boolean")
    same[(a == 0) | (b == 0)] = pd.NA
    return same


def _test_decisions(block: pd.DataFrame, test: str, reference: str, n_boot: int, rng) -> pd.DataFrame:
    """Every proxy's decisions on one test set: gap, bootstrap SE, z, bootstrap share and the outcome."""
    dists = sorted(block["dist"].unique())
    examples = pd.Index(sorted(block["example_id"].unique()))
    cubes = {size: _loss_cube(part, test, size, dists, examples) for size, part in block.groupby("size")}
    if reference not in cubes:
        raise DataError(f"no losses of the reference ({reference}) on test set {test}")
    weights = rng.multinomial(len(examples), np.full(len(examples), 1 / len(examples)), size=n_boot)
    a, b = np.triu_indices(len(dists), k=1)
    ref = cubes[reference].mean(axis=(0, 2))
    frames = []
    for size in sorted(s for s in cubes if s != reference):
        means, boot = cubes[size].mean(axis=(0, 2)), _bootstrap_means(cubes[size], weights, rng)
        gap, boot_gap = means[a] - means[b], boot[:, a] - boot[:, b]
        se = boot_gap.std(axis=0, ddof=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = gap / se
        share = (np.sign(boot_gap) == np.sign(gap)).mean(axis=0)
        frames.append(pd.DataFrame({
            "test": test, "size": size, "dist_a": np.asarray(dists)[a], "dist_b": np.asarray(dists)[b],
            "proxy_gap": gap, "proxy_se": se, "proxy_z": np.where(gap == 0, 0.0, z),
            "bootstrap_share": np.where(gap == 0, np.nan, share),
            "reference_gap": ref[a] - ref[b], "held": _same_order(gap, ref[a] - ref[b]),
        }))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def _fit_probit(x: np.ndarray, held: np.ndarray) -> np.ndarray:
    """Coefficients (a, b) of ``P(held) = Phi(a + b x)``, maximum a posteriori under independent
    N(0, PRIOR_SD^2) priors (finite even when every outcome is the same)."""
    design = np.column_stack([np.ones_like(x), x])
    sign = np.where(held, 1.0, -1.0)

    def loss(coef):
        eta = sign * (design @ coef)
        log_cdf = special.log_ndtr(eta)
        ratio = np.exp(sps.norm.logpdf(eta) - log_cdf)  # d log Phi(eta) / d eta
        value = -log_cdf.sum() + 0.5 * coef @ coef / PRIOR_SD**2
        return value, -design.T @ (sign * ratio) + coef / PRIOR_SD**2

    return optimize.minimize(loss, np.zeros(2), jac=True, method="BFGS").x


def _cross_fit(decisions: pd.DataFrame) -> pd.DataFrame:
    """``probability`` and ``model`` for every decision: per proxy size and test set, the probit fit on the
    other test sets' decided pairs with a known outcome, or the bootstrap share where there are none."""
    abs_z = decisions["proxy_z"].abs().to_numpy()
    known = decisions["held"].notna().to_numpy() & np.isfinite(abs_z)  # held is missing for a tie
    probability = decisions["bootstrap_share"].to_numpy(copy=True)
    model = np.full(len(decisions), BOOTSTRAP_MODEL, dtype=object)
    held = decisions["held"].to_numpy(dtype=bool, na_value=False)
    for (size, test), rows in decisions.groupby(["size", "test"]).indices.items():
        train = known & (decisions["size"] == size).to_numpy() & (decisions["test"] != test).to_numpy()
        if not train.any():
            continue
        a, b = _fit_probit(abs_z[train], held[train])
        with np.errstate(invalid="ignore"):
            probability[rows] = special.ndtr(a + b * abs_z[rows])
        model[rows] = PROBIT_MODEL
    tie = (decisions["proxy_gap"] == 0).to_numpy()
    return decisions.assign(probability=np.where(tie, np.nan, probability), model=model)


def decision_probabilities(losses: pd.DataFrame, reference: str, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One row per (test, proxy size, dist_a, dist_b) with dist_a < dist_b: the proxy's seed-mean gap
    (``proxy_gap``, mean loss of a minus b), its bootstrap standard error (``proxy_se``) and standardized
    gap (``proxy_z``), the share of bootstrap draws that keep its order (``bootstrap_share``), the
    probability that the reference orders the pair as the proxy does (``probability``, out of sample: see
    the module docstring; ``model`` says how it was made), and the outcome: the reference's seed-mean gap
    and whether it ``held``. ``losses`` has columns dist, size, seed, test, example_id and loss;
    deterministic given ``seed``."""
    rng = np.random.default_rng(seed)
    decisions = pd.concat(
        [_test_decisions(block, test, reference, n_boot, rng) for test, block in losses.groupby("test", sort=True)],
        ignore_index=True,
    )
    return _cross_fit(decisions)


def _judged(probabilities: pd.DataFrame) -> pd.DataFrame:
    """The decisions with a probability and a known outcome (neither side tied)."""
    return probabilities[probabilities["probability"].notna() & probabilities["held"].notna()]


def reliability_table(probabilities: pd.DataFrame, bins: int = 10, ci: float = 0.95) -> pd.DataFrame:
    """Calibration of :func:`decision_probabilities` over every decision given: per non-empty bin of equal
    width on [0, 1], its edges, the mean predicted probability, the observed share that held, the count
    and the Wilson interval (level ``ci``) of the observed share."""
    judged = _judged(probabilities)
    p = judged["probability"].to_numpy()
    index = np.minimum((p * bins).astype(int), bins - 1)
    table = (
        pd.DataFrame({"bin": index, "predicted": p, "held": judged["held"].to_numpy(dtype=float)})
        .groupby("bin")
        .agg(predicted=("predicted", "mean"), held=("held", "sum"), count=("held", "size"))
        .reset_index()
    )
    lo, hi = stats.wilson_interval(table["held"], table["count"], ci)
    return pd.DataFrame({
        "bin_lo": table["bin"] / bins, "bin_hi": (table["bin"] + 1) / bins, "predicted": table["predicted"],
        "observed": table["held"] / table["count"], "count": table["count"], "observed_lo": lo, "observed_hi": hi,
    })  # fmt: skip


def safe_decisions(probabilities: pd.DataFrame, threshold: float = 0.9, by=("test", "size")) -> pd.DataFrame:
    """Per group of ``by`` (test set and proxy size, or any of the columns): the decisions made (pairs the
    proxy does not tie), those with a probability of at least ``threshold`` (``safe``), the share of the
    safe ones that held (NaN where none is safe) and that of all of them (``accuracy``, the decision
    accuracy); pairs the reference ties count in neither numerator nor denominator."""
    decided = probabilities[probabilities["probability"].notna()]
    safe, held = decided["probability"] >= threshold, decided["held"].astype(float)
    return (
        decided.assign(safe=safe, safe_held=held.where(safe), held=held)
        .groupby(list(by))
        .agg(
            decisions=("safe", "size"),
            safe=("safe", "sum"),
            safe_share_held=("safe_held", "mean"),
            accuracy=("held", "mean"),
        )
        .reset_index()
    )
