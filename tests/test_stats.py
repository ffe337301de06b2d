"""Statistics against closed forms and scipy."""

import numpy as np
import pytest
from scipy import stats as sps

from proxyscale import stats


def test_r2_is_squared_pearson_and_exact_on_a_line():
    rng = np.random.default_rng(0)
    x = rng.normal(size=30)
    y = 2 * x + rng.normal(size=30)
    assert stats.r2(x, y) == pytest.approx(sps.linregress(x, y).rvalue ** 2)
    assert stats.r2(x, 3 - 5 * x) == pytest.approx(1.0)
    assert np.isnan(stats.r2([1, 1, 1], [1, 2, 3])) and np.isnan(stats.r2([1, 2], [1, 2]))


def test_spearman_is_rank_based():
    x = np.arange(10.0)
    assert stats.spearman(x, np.exp(x)) == pytest.approx(1.0)
    assert stats.spearman(x, -(x**3)) == pytest.approx(-1.0)


def test_bootstrap_interval_brackets_the_estimate():
    rng = np.random.default_rng(1)
    x = rng.normal(size=40)
    y = x + 0.5 * rng.normal(size=40)
    lo, hi = stats.bootstrap_ci(x, y, stats.r2, n_boot=500, ci=0.95)
    assert lo < stats.r2(x, y) < hi and 0 <= lo and hi <= 1
    assert (lo, hi) == stats.bootstrap_ci(x, y, stats.r2, n_boot=500, ci=0.95)


def test_leave_one_out_exact_on_a_line_and_worse_on_noise():
    x = np.arange(7.0)
    exact = stats.leave_one_out(x, 1 + 2 * x)
    assert exact["r2"] == pytest.approx(1.0) and exact["mae"] == pytest.approx(0.0, abs=1e-9)
    noise = stats.leave_one_out(x, np.random.default_rng(0).normal(size=7))
    assert noise["r2"] < 0.5


def test_per_sample_r2_matches_columnwise_r2():
    rng = np.random.default_rng(2)
    proxy, ref = rng.normal(size=(6, 5)), rng.normal(size=(6, 5))
    expected = [stats.r2(proxy[:, j], ref[:, j]) for j in range(5)]
    assert np.allclose(stats.per_sample_r2(proxy, ref), expected)


def test_signed_correlation_keeps_the_slopes_sign():
    x = np.arange(6.0)
    assert stats.pearson(x, 2 * x + 1) == pytest.approx(1.0) and stats.pearson(x, -x) == pytest.approx(-1.0)
    assert stats.r2(x, -x) == pytest.approx(1.0)  # R^2 alone cannot tell the two apart


def test_decision_accuracy_counts_pairs_ordered_alike():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    assert stats.decision_accuracy(x, x * 10) == 1.0 and stats.decision_accuracy(x, -x) == 0.0
    # swapping the last two of four points flips 1 of the 6 pairs
    assert stats.decision_accuracy(x, np.array([1.0, 2.0, 4.0, 3.0])) == pytest.approx(5 / 6)
    # pairs tied in either ranking (repeated bootstrap points) are left out
    assert stats.decision_accuracy(np.array([1.0, 1.0, 2.0]), np.array([5.0, 6.0, 7.0])) == 1.0


def test_per_sample_null_is_near_one_over_n_minus_one_for_unrelated_losses():
    rng = np.random.default_rng(0)
    proxy, reference = rng.normal(size=(8, 2000)), rng.normal(size=(8, 2000))
    null = stats.per_sample_r2_null(proxy, reference, n_perm=5)
    assert null.shape == (5 * 2000,) and np.mean(null) == pytest.approx(1 / 7, abs=0.01)
    # a proxy equal to the reference agrees perfectly, the shuffled one only by chance
    assert np.median(stats.per_sample_r2(reference, reference)) == pytest.approx(1.0)
    assert np.median(stats.per_sample_r2_null(reference, reference, n_perm=5, seed=1)) < 0.3
