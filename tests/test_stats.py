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
