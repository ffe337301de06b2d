"""Decision probabilities (proxyscale.correlation.decisions) against decisions whose chance of holding is
known by construction, and their reliability table and figure."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from test_figures import _drawn, _layout_problems

from proxyscale import stats
from proxyscale.correlation import decisions, figures
from proxyscale.errors import DataError

DISAGREEMENT = 3.0
"""The reference's gap is the proxy's plus Gaussian noise of this many proxy standard errors."""


def simulated_losses(n_tests=6, n_dists=16, n_examples=200, seed=0):
    """Per-example losses of a proxy ``p``, a copy of the reference ``copy`` and the reference ``ref`` (one
    seed) on ``n_tests`` test sets of different loss scales, and the true probability that the reference
    keeps each proxy decision of ``p``.

    Proxy losses are a distribution effect plus independent per-example noise (sd ``sigma``, so a gap's
    standard error is ``se = sigma * sqrt(2 / n_examples)``); the reference adds to each distribution a
    Gaussian shift of sd ``DISAGREEMENT * se / sqrt(2)``, so its gap is the proxy's plus N(0, (DISAGREEMENT
    se)^2) noise and ``P(held) = Phi(|gap| / (DISAGREEMENT se))`` exactly."""
    rng = np.random.default_rng(seed)
    frames, truth = [], []
    for t in range(n_tests):
        sigma = 0.5 * (1 + t)
        se = sigma * np.sqrt(2 / n_examples)
        proxy = rng.normal(0, 3 * se, n_dists)[:, None] + rng.normal(0, sigma, (n_dists, n_examples))
        reference = proxy + rng.normal(0, DISAGREEMENT * se / np.sqrt(2), n_dists)[:, None]
        for size, values in (("p", proxy), ("copy", reference), ("ref", reference)):
            frames.append(pd.DataFrame({
                "dist": np.repeat([f"d{d:02d}" for d in range(n_dists)], n_examples), "size": size, "seed": 0,
                "test": f"t{t}", "example_id": np.tile(np.arange(n_examples), n_dists), "loss": values.ravel(),
            }))  # fmt: skip
        means = proxy.mean(1)
        a, b = np.triu_indices(n_dists, k=1)
        truth.append(sps.norm.cdf(np.abs(means[a] - means[b]) / (DISAGREEMENT * se)))
    return pd.concat(frames, ignore_index=True), np.concatenate(truth)


@pytest.fixture(scope="module")
def simulated():
    losses, truth = simulated_losses(n_tests=8, n_dists=24)
    return losses, truth, decisions.decision_probabilities(losses, "ref", n_boot=400, seed=0)


def test_probabilities_recover_the_known_chance_that_the_reference_agrees(simulated):
    _, truth, table = simulated
    proxy = table[table["size"] == "p"]
    assert (proxy["model"] == decisions.PROBIT_MODEL).all()
    error = np.abs(proxy["probability"].to_numpy() - truth)
    assert error.mean() < 0.04 and error.max() < 0.12  # simulations 0-7 give at most 0.021 and 0.080
    assert sps.spearmanr(proxy["probability"], truth).statistic > 0.95
    # calibrated against the outcomes too: held as often as predicted, within binomial sampling error
    held = proxy["held"].to_numpy(dtype=float)
    assert abs(held.mean() - proxy["probability"].mean()) < 3 * np.sqrt(truth.mean() * (1 - truth.mean()) / len(truth))
    # the bootstrap share alone only says the proxy would decide alike again: overconfident here
    assert proxy["bootstrap_share"].mean() - truth.mean() > 0.1


def test_a_proxy_identical_to_the_reference_holds_every_decision_with_probabilities_near_one(simulated):
    _, _, table = simulated
    copy = table[table["size"] == "copy"]
    assert copy["held"].all()
    assert (copy.loc[copy["proxy_z"].abs() > 4, "probability"] > 0.99).all()


def test_held_is_the_decision_accuracy_of_the_seed_mean_losses(simulated):
    losses, _, table = simulated
    means = losses.groupby(["test", "size", "dist"])["loss"].mean()
    for (test, size), block in table.groupby(["test", "size"]):
        expected = stats.decision_accuracy(means[test, size].to_numpy(), means[test, "ref"].to_numpy())
        assert block["held"].mean() == pytest.approx(expected)
        assert block["proxy_gap"].to_numpy() == pytest.approx(
            [means[test, size, a] - means[test, size, b] for a, b in zip(block["dist_a"], block["dist_b"])]
        )


def test_a_probability_never_uses_the_references_outcome_on_its_own_test_set(simulated):
    losses, _, table = simulated
    flipped = losses.assign(loss=losses["loss"].where((losses["size"] != "ref") | (losses["test"] != "t2"),
                                                      -losses["loss"]))  # fmt: skip
    again = decisions.decision_probabilities(flipped, "ref", n_boot=400, seed=0)
    own, others = again["test"] == "t2", again["test"] != "t2"
    assert not again.loc[own & (again["size"] == "copy"), "held"].any()  # its outcomes did change
    assert again.loc[own, "probability"].to_numpy() == pytest.approx(table.loc[own, "probability"].to_numpy())
    assert not np.allclose(again.loc[others, "probability"], table.loc[others, "probability"])


def test_one_test_set_falls_back_to_the_bootstrap_share_which_is_about_phi_of_z():
    losses, _ = simulated_losses(n_tests=1)
    table = decisions.decision_probabilities(losses, "ref", n_boot=2000, seed=1)
    assert (table["model"] == decisions.BOOTSTRAP_MODEL).all()
    assert table["probability"].to_numpy() == pytest.approx(table["bootstrap_share"].to_numpy())
    normal = sps.norm.cdf(table["proxy_z"].abs())
    assert np.abs(table["probability"] - normal).mean() < 0.02


def test_seeds_are_resampled_so_a_gap_that_varies_only_across_seeds_has_their_standard_error():
    """Every example of a (seed, distribution) has the same loss, so resampling examples changes nothing and
    the gap's bootstrap SE is that of a mean of the 3 seeds' gaps: population sd / sqrt(3). The reference has
    2 seeds, the proxy 3."""
    offsets = np.array([[0.0, 0.3, 0.1], [0.6, 0.0, 0.9], [0.2, 0.5, 0.4]])  # (seed, dist)
    rows = [
        {"dist": f"d{d}", "size": "p", "seed": s, "test": test, "example_id": e, "loss": offsets[s, d] + d}
        for test in ("t0", "t1")
        for s in range(3)
        for d in range(3)
        for e in range(5)
    ]
    rows += [{"dist": f"d{d}", "size": "ref", "seed": s, "test": test, "example_id": e, "loss": d + 0.1 * s + e}
             for test in ("t0", "t1") for s in range(2) for d in range(3) for e in range(5)]  # fmt: skip
    table = decisions.decision_probabilities(pd.DataFrame(rows), "ref", n_boot=4000, seed=0)
    a, b = table["dist_a"].str[1].astype(int).to_numpy(), table["dist_b"].str[1].astype(int).to_numpy()
    diff = offsets[:, a] - offsets[:, b] + (a - b)
    assert table["proxy_gap"].to_numpy() == pytest.approx(diff.mean(0))
    assert table["proxy_se"].to_numpy() == pytest.approx(diff.std(0) / np.sqrt(3), rel=0.05)
    assert table["held"].all()  # the reference's distribution effect d dominates


def test_a_tie_in_the_proxy_is_no_decision_and_a_tie_in_the_reference_no_outcome():
    losses, _ = simulated_losses(n_tests=2, n_dists=4, n_examples=30)
    d0 = losses[losses["dist"] == "d00"].set_index(["size", "test", "example_id"])["loss"]
    key = pd.MultiIndex.from_frame(losses[["size", "test", "example_id"]])
    tie_p = (losses["dist"] == "d01") & (losses["size"] == "p")  # p ties d00 and d01
    tie_ref = (losses["dist"] == "d02") & (losses["size"] == "ref") & (losses["test"] == "t0")  # ref ties d00, d02
    losses.loc[tie_p | tie_ref, "loss"] = d0.reindex(key[tie_p | tie_ref]).to_numpy()
    table = decisions.decision_probabilities(losses, "ref", n_boot=200, seed=0).set_index(["test", "size", "dist_a",
                                                                                              "dist_b"])  # fmt: skip
    for test in ("t0", "t1"):
        assert np.isnan(table.loc[(test, "p", "d00", "d01"), "probability"])
        assert table.loc[(test, "p", "d00", "d01"), "held"] is pd.NA
    assert table.loc[("t0", "copy", "d00", "d02"), "held"] is pd.NA
    assert table.loc[("t1", "copy", "d00", "d02"), "held"] is not pd.NA
    judged = decisions.reliability_table(table.reset_index())["count"].sum()
    assert judged == 2 * 2 * 6 - 2 - 2  # 2 proxies x 2 tests x 6 pairs, less p's tie on each test and the
    # reference's tie on t0, which leaves both proxies' decision on it without an outcome
    safe = decisions.safe_decisions(table.reset_index(), threshold=0.0).set_index(["test", "size"])
    assert safe.loc[("t0", "p"), "decisions"] == 5 and safe.loc[("t0", "copy"), "decisions"] == 6


def test_losses_that_miss_an_example_fail_naming_the_size_and_test_set():
    losses, _ = simulated_losses(n_tests=2, n_dists=3, n_examples=10)
    with pytest.raises(DataError, match="size p on test set t1"):
        decisions.decision_probabilities(losses.drop(index=losses.index[-1 - 2 * 30]), "ref", n_boot=10)


def test_decision_probabilities_are_deterministic_given_the_seed():
    losses, _ = simulated_losses(n_tests=2, n_dists=4, n_examples=30)
    first = decisions.decision_probabilities(losses, "ref", n_boot=50, seed=3)
    pd.testing.assert_frame_equal(first, decisions.decision_probabilities(losses, "ref", n_boot=50, seed=3))
    other = decisions.decision_probabilities(losses, "ref", n_boot=50, seed=4)
    assert not np.allclose(first["proxy_se"], other["proxy_se"])


def test_wilson_interval_against_hand_values():
    lo, hi = stats.wilson_interval([0, 5], [10, 10])
    assert lo == pytest.approx([0.0, 0.2366], abs=1e-4)
    assert hi == pytest.approx([1.96**2 / (10 + 1.96**2), 0.7634], abs=1e-4)


def _bernoulli_decisions(p, seed=0):
    held = np.random.default_rng(seed).random(len(p)) < p
    return pd.DataFrame({"probability": p, "held": pd.array(held, dtype="boolean")})


def test_reliability_table_recovers_known_probabilities_within_sampling_error():
    p = np.random.default_rng(1).random(20_000)
    table = decisions.reliability_table(_bernoulli_decisions(p))
    assert table["count"].sum() == len(p) and len(table) == 10
    assert ((table["bin_lo"] <= table["predicted"]) & (table["predicted"] < table["bin_hi"])).all()
    se = np.sqrt(table["predicted"] * (1 - table["predicted"]) / table["count"])
    assert (np.abs(table["observed"] - table["predicted"]) < 3 * se).all()
    assert ((table["observed_lo"] < table["observed"]) & (table["observed"] < table["observed_hi"])).all()


def test_reliability_table_exposes_a_miscalibrated_predictor():
    p = np.random.default_rng(2).random(20_000)
    table = decisions.reliability_table(_bernoulli_decisions(p).assign(probability=p**3))
    se = np.sqrt(table["predicted"] * (1 - table["predicted"]) / table["count"])
    assert (np.abs(table["observed"] - table["predicted"]) > 3 * se).sum() >= 8
    outside = (table["predicted"] < table["observed_lo"]) | (table["predicted"] > table["observed_hi"])
    assert outside.sum() >= 8


def test_safe_decisions_counts_those_at_or_above_the_threshold_and_the_share_that_held():
    table = pd.DataFrame({
        "test": "t", "size": "s", "probability": [0.95, 0.9, 0.5, 0.99, np.nan],
        "held": pd.array([True, False, True, pd.NA, True], dtype="boolean"),
    })  # fmt: skip
    safe = decisions.safe_decisions(table, threshold=0.9).iloc[0]
    assert (safe["decisions"], safe["safe"], safe["safe_share_held"]) == (4, 3, 0.5)
    assert safe["accuracy"] == pytest.approx(2 / 3)  # of the 3 decided pairs with a known outcome
    other = table.assign(test="u", probability=[0.5, 0.6, 0.7, 0.8, 0.85])  # no safe decision on u
    by_test = decisions.safe_decisions(pd.concat([table, other]), threshold=0.9).set_index("test")
    assert by_test.loc["u", "safe"] == 0 and np.isnan(by_test.loc["u", "safe_share_held"])
    pooled = decisions.safe_decisions(pd.concat([table, other]), threshold=0.9, by=["size"]).iloc[0]
    assert (pooled["size"], pooled["decisions"], pooled["safe"], pooled["safe_share_held"]) == ("s", 9, 3, 0.5)
    assert pooled["accuracy"] == pytest.approx(5 / 7)


def test_reliability_figure_shows_each_bin_with_its_count_and_nothing_overlapping(tmp_path, monkeypatch):
    p = np.random.default_rng(3).beta(5, 1, 2000)
    table = decisions.reliability_table(_bernoulli_decisions(p))
    fig = _drawn(figures, lambda: figures.reliability_figure(table, "f.png"), monkeypatch)
    counts = {t.get_text() for t in fig.axes[1].texts}
    assert counts == {str(n) for n in table["count"]}
    assert _layout_problems(fig) == []
    plt.close(fig)
    monkeypatch.undo()
    figures.reliability_figure(table, tmp_path / "reliability.png")
    assert (tmp_path / "reliability.png").exists() and (tmp_path / "reliability.svg").exists()
