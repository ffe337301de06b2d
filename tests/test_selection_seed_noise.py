"""A selection's difference from random carries seed noise as well as example noise: the nested bootstrap
(proxyscale.stats.nested_mean_ci) on constructed retraining results whose noise is known, and the DsDm
report's tables and findings built on it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from proxyscale import stats
from proxyscale.selection.analysis import results_table
from proxyscale.selection.report import dsdm_findings, seeds_text


def _run(rng, hardness, delta, seeds, seed_sd, example_sd, residual_sd=0.05):
    """Losses (seeds x examples) of one selection: the examples' shared ``hardness``, the true shift
    ``delta``, the selection's own per-example effect (``example_sd``: what pairing by example leaves), a
    shift per retraining seed (``seed_sd``) and a residual per seed and example."""
    n = len(hardness)
    own = rng.normal(0, example_sd, n)
    return delta + hardness + own + rng.normal(0, seed_sd, (seeds, 1)) + rng.normal(0, residual_sd, (seeds, n))


def _pair(rng, delta=0.0, n=60, seeds=(8, 8), seed_sd=0.0, example_sd=0.3):
    """A selection's losses and random's on the same examples; the true difference is ``delta``."""
    hardness = rng.normal(3.0, 0.6, n)
    return _run(rng, hardness, delta, seeds[0], seed_sd, example_sd), _run(rng, hardness, 0.0, seeds[1], seed_sd, 0.0)


def test_without_seed_noise_the_interval_is_the_examples_only_one():
    rng = np.random.default_rng(0)
    row = rng.normal(3.0, 0.5, 50)
    other = row - 0.1 + rng.normal(0, 0.2, 50)
    mine, random = np.tile(row, (3, 1)), np.tile(other, (4, 1))  # every seed alike: no seed noise
    np.testing.assert_allclose(stats.nested_mean_ci([mine], [1.0], 500, 0.95), stats.mean_ci(row, 500, 0.95))
    np.testing.assert_allclose(
        stats.nested_mean_ci([mine, random], [1.0, -1.0], 500, 0.95), stats.mean_ci(row - other, 500, 0.95)
    )


def test_one_seed_per_side_gives_the_examples_interval_not_nan():
    mine, random = _pair(np.random.default_rng(1), delta=-0.1, seeds=(1, 1), seed_sd=0.2)
    got = stats.nested_mean_ci([mine, random], [1.0, -1.0], 500, 0.95)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, stats.mean_ci(mine[0] - random[0], 500, 0.95))


def test_the_interval_widens_with_seed_noise_and_the_examples_only_one_does_not():
    widths, examples_only = [], []
    for seed_sd in (0.0, 0.1, 0.3):
        mine, random = _pair(np.random.default_rng(2), seed_sd=seed_sd)
        _, lo, hi = stats.nested_mean_ci([mine, random], [1.0, -1.0], 1000, 0.95)
        _, elo, ehi = stats.mean_ci(mine.mean(0) - random.mean(0), 1000, 0.95)
        widths.append(hi - lo)
        examples_only.append(ehi - elo)
    # seed shifts move every example of a run alike: resampling examples alone cannot see them
    assert widths[0] < widths[1] < widths[2] and widths[2] > 3 * widths[0]
    np.testing.assert_allclose(examples_only, examples_only[0], rtol=0.05)
    # the difference's standard error is sqrt(2 / 8) x seed_sd beside example_sd / sqrt(60) = 0.039
    assert widths[2] == pytest.approx(2 * 1.96 * np.hypot(0.3 * np.sqrt(2 / 8), 0.3 / np.sqrt(60)), rel=0.35)


def test_coverage_over_repeated_draws_is_near_nominal():
    """200 synthetic experiments whose seed noise dominates: the nested interval covers the true difference
    about 95% of the time, the examples-only interval far less often."""
    rng = np.random.default_rng(3)
    nested = examples = 0
    draws = 200
    for _ in range(draws):
        mine, random = _pair(rng, delta=-0.1, seed_sd=0.15)
        _, lo, hi = stats.nested_mean_ci([mine, random], [1.0, -1.0], 400, 0.95)
        _, elo, ehi = stats.mean_ci(mine.mean(0) - random.mean(0), 400, 0.95)
        nested += lo <= -0.1 <= hi
        examples += elo <= -0.1 <= ehi
    assert 0.88 <= nested / draws <= 0.99
    assert examples / draws < 0.7


def _retrains(**specs) -> pd.DataFrame:
    """Retraining results on target 't' from :func:`_pair`: ``method=(delta, seeds)``, random with 4 seeds,
    seed noise 0.15 and little example noise, so only the seeds can make a difference uncertain."""
    rng = np.random.default_rng(4)
    hardness = rng.normal(3.0, 0.6, 80)
    frames = []
    for method, (delta, seeds) in {"random": (0.0, 4), **specs}.items():
        for s, loss in enumerate(_run(rng, hardness, delta, seeds, seed_sd=0.15, example_sd=0.02)):
            frames.append(pd.DataFrame({"target": "t", "method": method, "seed": s, "holdout_task": "t",
                                        "example_id": np.arange(80), "loss": loss, "token_accuracy": 0.5}))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


COMPUTE = pd.DataFrame({"size": ["big", "small"], "compute_ratio": [1.0, 10.0]})


def test_a_difference_within_seed_noise_no_longer_beats_random():
    retrains = _retrains(**{"dsdm-big": (-0.1, 4), "dsdm-small": (-0.6, 2)})
    table = results_table(retrains, COMPUTE, 1000, 0.95).set_index("method")
    assert table.loc["dsdm-big", "seeds"] == 4 and table.loc["dsdm-big", "random_seeds"] == 4
    assert table.loc["dsdm-small", "seeds"] == 2 and table.loc["random", "random_seeds"] == 0
    # examples alone resolve the 0.1 (their noise is 0.02), but four seeds of noise 0.15 per side do not
    paired = retrains.groupby(["method", "example_id"])["loss"].mean().unstack()
    _, _, examples_hi = stats.mean_ci(paired.loc["dsdm-big"] - paired.loc["random"], 1000, 0.95)
    assert examples_hi < 0 and not table.loc["dsdm-big", "beats_random"]
    assert table.loc["dsdm-small", "beats_random"]  # 0.6 is beyond the seed noise
    text = "\n".join(dsdm_findings(table.reset_index().assign(kind="dsdm", size=lambda t: t["method"].str[5:]), "big"))
    assert "(4 vs 4 seeds; interval over seeds and holdout examples)" in text
    assert "beats random (interval below 0) with small; not with big" in text


def test_one_seed_is_said_not_hidden():
    retrains = _retrains(**{"dsdm-big": (-0.3, 1)})
    table = results_table(retrains, COMPUTE, 500, 0.95)
    assert np.isfinite(table[["loss_delta_lo", "loss_delta_hi"]].to_numpy(float)[1]).all()
    text = "\n".join(dsdm_findings(table.assign(kind=["random", "dsdm"], size=[None, "big"]), "big"))
    assert "1 vs 4 seeds; one seed for this selection, whose seed noise is therefore not measured" in text
    assert seeds_text(table) == "1 seed (4 for random)"
