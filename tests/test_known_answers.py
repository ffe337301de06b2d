"""Known answers for the numbers the conclusions rest on: hand-computed values, closed forms, and
independent implementations (numpy, scipy), each for a computation the reports' headlines use."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats as sps

from proxyscale import stats


def _resampled_r2(x: np.ndarray, y: np.ndarray, n_boot: int, seed: int) -> list[float]:
    """R^2 over the resamples bootstrap_ci draws (same seeded stream), keeping those of at least three
    distinct points: the values its percentiles must be taken from."""
    rng, values = np.random.default_rng(seed), []
    for _ in range(n_boot):
        idx = rng.integers(0, len(x), len(x))
        if len(np.unique(idx)) >= 3:
            values.append(stats.r2(x[idx], y[idx]))
    return values


def test_bootstrap_percentiles_are_the_two_tails_of_the_resampled_statistic():
    """The interval is the (1-ci)/2 and 1-(1-ci)/2 quantiles of the statistic over the same resamples."""
    x, y = np.arange(12.0), np.arange(12.0) ** 1.5 + np.sin(np.arange(12))
    lo, hi = stats.bootstrap_ci(x, y, stats.r2, n_boot=400, ci=0.8, seed=3)
    values = _resampled_r2(x, y, 400, seed=3)
    assert (lo, hi) == (np.quantile(values, 0.1), np.quantile(values, 0.9))


def test_mean_ci_is_the_mean_and_the_tails_of_resampled_means():
    values = np.array([1.0, 2.0, 4.0, np.nan, 8.0])
    mean, lo, hi = stats.mean_ci(values, n_boot=300, ci=0.9, seed=1)
    finite = values[np.isfinite(values)]
    means = finite[np.random.default_rng(1).integers(0, 4, (300, 4))].mean(1)
    assert mean == 3.75 and (lo, hi) == (np.quantile(means, 0.05), np.quantile(means, 0.95))
    assert stats.mean_ci([np.nan], 10, 0.9) != stats.mean_ci([np.nan], 10, 0.9)  # all NaN: undefined


def test_leave_one_out_predictions_by_hand():
    """Points (0,0) (1,1) (2,2) (3,5): leaving out (3,5) the line is y = x, predicting 3; leaving out
    (0,0) the line through (1,1) (2,2) (3,5) is y = 2x - 4/3, predicting -4/3."""
    out = stats.leave_one_out([0, 1, 2, 3], [0, 1, 2, 5])
    assert out["predictions"][3] == pytest.approx(3.0) and out["predictions"][0] == pytest.approx(-4 / 3)
    press = sum((np.array([0, 1, 2, 5]) - out["predictions"]) ** 2)
    assert out["r2"] == pytest.approx(1 - press / 14.0)  # SS_tot: mean 2, (4 + 1 + 0 + 9)


def test_loo_predictions_table_leaves_each_distribution_out_per_test_and_proxy():
    from proxyscale.correlation.analysis import loo_predictions

    dists = ["a", "b", "c", "d"]
    means = pd.DataFrame(
        {
            "test": "t",
            "dist": dists * 2,
            "size": ["ref"] * 4 + ["p"] * 4,
            "loss": [0, 1, 2, 5, 0, 1, 2, 3],  # reference y, proxy x as in the test above
        }
    )
    table = loo_predictions(means, "ref").set_index("dist")
    assert list(table["size"].unique()) == ["p"] and table.loc["d", "reference_loss"] == 5
    assert table.loc["d", "predicted_loss"] == pytest.approx(3.0)
    assert table.loc["a", "predicted_loss"] == pytest.approx(-4 / 3)


def test_compute_ratio_is_the_references_flops_over_each_sizes():
    from proxyscale.correlation.analysis import compute_table

    runs = pd.DataFrame(
        {
            "size": ["ref", "ref", "s", "s"],
            "params": [100, 100, 10, 10],
            "tokens": [2000, 2000, 200, 200],
            "flops": [6 * 100 * 2000] * 2 + [6 * 10 * 200] * 2,
            "wall_seconds": [10.0, 20.0, 1.0, 3.0],
            "tokens_per_second": [200.0, 100.0, 200.0, 100.0],
            "mfu": [0.5, 0.3, 0.1, 0.1],
            "final_loss": [1.0, 2.0, 3.0, 4.0],
            "max_shard_repetition": [1.0, 2.0, 1.0, 1.0],
        }
    )
    table = compute_table(runs, "ref").set_index("size")
    assert table.loc["s", "compute_ratio"] == 100.0 and table.loc["ref", "compute_ratio"] == 1.0
    assert table.loc["ref", "wall_seconds"] == 15.0 and table.loc["ref", "mfu"] == pytest.approx(0.4)
    assert list(table.index) == ["ref", "s"] and table.loc["ref", "max_repetition"] == 2.0


def test_trak_flops_by_hand():
    """forward 10, 100 parameters, k = 8, 50 training and 4 target examples: 54 x (3 x 10 + 2 x 100 x 8)
    per-example gradients and projections, 4 x 50 x 64 for Phi^T Phi and Phi (Phi^T Phi)^-1, 8^3 for the
    inverse, 2 x 50 x 8 x 4 for the scores."""
    from proxyscale.datamodels.cost import trak_flops

    assert trak_flops(10.0, 100, 8, 50, 4) == 54 * 1630 + 12_800 + 512 + 3_200


def test_datamodel_cost_table_sums_checkpoints_and_ratios_training_flops():
    from proxyscale.datamodels.cost import size_costs, trak_flops

    def meta(params, flops, seconds):
        return {"params": params, "examples": 50, "repetition": 1.5, "flops": flops, "wall_seconds": seconds,
                "forward_flops_per_example": 2.0 * params}  # fmt: skip

    def store(projector, q):
        return {"proj_dim": 8, "n_train": 50, "wall_seconds": 1.0, "score_seconds": 0.5, "projector": projector, "q": q}

    metas = {"small": [meta(100, 3e5, 2.0)], "big": [meta(1000, 6e6, 2.0), meta(1000, 6e6, 4.0)]}  # small first
    stores = {"small": [store("MyProjector", False)], "big": [store("SJLTProjector", True)] * 2}
    table = size_costs(metas, stores, 4, "big")
    expected = pd.DataFrame(
        {
            "size": ["big", "small"],  # most training compute first
            "params": [1000, 100],
            "checkpoints": [2, 1],
            "examples": [50, 50],
            "repetition": [1.5, 1.5],
            "train_flops_per_model": [6e6, 3e5],
            "train_flops": [1.2e7, 3e5],
            "trak_flops": [2 * (trak_flops(2000.0, 1000, 8, 50, 4) + 50 * 2000.0), trak_flops(200.0, 100, 8, 50, 4)],
            "train_seconds": [6.0, 2.0],
            "trak_seconds": [3.0, 1.5],
            "proj_dim": [8, 8],
            "projection": ["sparse Johnson-Lindenstrauss", "MyProjector"],  # an unknown projector by its name
            "compute_ratio": [1.0, 20.0],
        }
    )
    pd.testing.assert_frame_equal(table, expected)


def test_checkpoint_costs_reads_each_sizes_files_size_major(monkeypatch):
    from proxyscale.datamodels import cost

    monkeypatch.setattr(cost, "checkpoint_meta", lambda path: {"meta of": path})
    monkeypatch.setattr(cost, "store_summary", lambda path: {"summary of": path})
    metas, summaries = cost.checkpoint_costs(["a", "b"], 2, ["m1", "m2", "m3", "m4"], ["s1", "s2", "s3", "s4"])
    assert metas == {"a": [{"meta of": "m1"}, {"meta of": "m2"}], "b": [{"meta of": "m3"}, {"meta of": "m4"}]}
    assert summaries == {
        "a": [{"summary of": "s1"}, {"summary of": "s2"}],
        "b": [{"summary of": "s3"}, {"summary of": "s4"}],
    }
    assert cost.grouped(list("abcdef"), ["x", "y", "z"], 2) == {"x": ["a", "b"], "y": ["c", "d"], "z": ["e", "f"]}


def test_lds_is_spearman_not_pearson():
    """Predictions that are a monotone but nonlinear function of the truth: Spearman 1, Pearson below."""
    from proxyscale.attribution.lds import lds_per_target

    actual = np.arange(10.0)[:, None]
    predicted = np.exp(actual)
    assert lds_per_target(predicted, actual)[0] == pytest.approx(1.0)
    assert sps.pearsonr(predicted[:, 0], actual[:, 0]).statistic < 0.8
    swapped = actual.copy()
    swapped[[0, 1]] = swapped[[1, 0]]  # one discordant pair of 45: Spearman 1 - 6 x 2 / (10 x 99)
    assert lds_per_target(swapped, actual)[0] == pytest.approx(1 - 12 / 990)


def test_lds_predictions_are_the_sum_of_the_included_examples_weights():
    from proxyscale.attribution.lds import predicted_outputs

    tau = np.array([[1.0, 0.0], [2.0, -1.0], [4.0, 3.0]])
    masks = np.array([[True, False, True], [False, True, True]])
    assert predicted_outputs(tau, masks).tolist() == [[5.0, 3.0], [6.0, 2.0]]
    assert predicted_outputs(tau.astype(np.float32), masks).dtype == np.float32  # in the scores' precision


def test_lds_of_a_constant_column_is_nan_and_any_spread_counts(recwarn):
    """A target whose predictions or actual outputs do not vary has no rank correlation (NaN, no scipy
    warning); one that varies by less than 1 is as good as any other."""
    from proxyscale.attribution.lds import lds_per_target

    actual = np.array([[0.1, 1.0, 0.3], [0.2, 2.0, 0.3], [0.4, 3.0, 0.3]])
    predicted = np.array([[0.01, 5.0, 1.0], [0.03, 5.0, 2.0], [0.02, 5.0, 3.0]])
    out = lds_per_target(predicted, actual)
    assert out[0] == pytest.approx(0.5) and np.isnan(out[1]) and np.isnan(out[2])
    assert not recwarn.list


def test_lds_subsets_hold_round_alpha_n_examples_and_at_least_one():
    from proxyscale.attribution.lds import subset_mask

    mask = subset_mask(10, 0.5, 0, 3)
    assert mask.dtype == bool and mask.sum() == 5
    assert subset_mask(10, 0.01, 0, 3).sum() == 1


def test_sjlt_across_several_chunks_is_the_matrix_product():
    """Models have far more coordinates than one gather chunk (16,384): the chunked path, against the
    explicit sketch built coordinate by coordinate."""
    from proxyscale.datamodels import sjlt

    blocks = [20_000, 13_001, 7]
    p, k = sum(blocks), 16
    proj = sjlt.SJLTProjector(p, k, seed=2, block_sizes=blocks)
    assert p > 2 * sjlt.CHUNK
    g = torch.randn(3, p)
    eye_rows = torch.zeros(k, p)  # column j of S: project the unit vectors a chunk of rows at a time
    for start in range(0, p, 4096):
        eye = torch.zeros(min(4096, p - start), p)
        eye[torch.arange(len(eye)), torch.arange(start, start + len(eye))] = 1
        eye_rows[:, start : start + len(eye)] = proj.project(eye, 0).T
    expected = g.double() @ eye_rows.T.double()
    assert (eye_rows != 0).sum(0).eq(1).all()  # one signed entry per coordinate, in every chunk
    torch.testing.assert_close(proj.project(g, 0).double(), expected, rtol=1e-5, atol=1e-4)


def test_dsir_weights_by_hand():
    """Buckets 4; pool rows [0, 1] and [2, 2] (unigrams and their bigram), target [0, 1]: the log-ratio
    of smoothed target and pool bucket frequencies, summed over each row's n-grams."""
    from proxyscale.data.ngrams import hashed_ngrams, ngram_ids
    from proxyscale.selection.methods import dsir

    pool_seqs, target_seqs = [np.array([0, 1]), np.array([2, 2])], [np.array([0, 1])]
    pool, target = hashed_ngrams(pool_seqs, 4), hashed_ngrams(target_seqs, 4)
    ids = [ngram_ids(s, 4)[0] for s in pool_seqs]
    pool_counts = np.bincount(np.concatenate(ids), minlength=4) + 1.0
    target_counts = np.bincount(ngram_ids(target_seqs[0], 4)[0], minlength=4) + 1.0
    ratio = np.log(target_counts / target_counts.sum()) - np.log(pool_counts / pool_counts.sum())
    expected = np.array([ratio[i].sum() for i in ids])
    chosen, weights = dsir(lambda: iter([(np.arange(2), pool)]), 2, target, 1, seed=0)
    np.testing.assert_allclose(weights, expected)
    assert expected[0] > expected[1]  # the target-like row weighs more


def test_classifier_scores_are_the_fitted_logistic_regressions():
    """Against scipy's minimiser of the same objective (class-balanced log loss + l2/2 |w|^2, L2-normalised
    sparse counts): the scores of the pool rows agree in order, and the target-like rows rank first."""
    from scipy.optimize import minimize

    from proxyscale.data.ngrams import hashed_ngrams
    from proxyscale.selection.methods import _normalise, classifier

    rng = np.random.default_rng(0)
    pool_seqs = [rng.integers(0, 6, 10) for _ in range(30)] + [rng.integers(6, 12, 10) for _ in range(6)]
    target_seqs = [rng.integers(6, 12, 10) for _ in range(8)]
    pool, target = hashed_ngrams(pool_seqs, 32), hashed_ngrams(target_seqs, 32)
    chosen, score = classifier(lambda: iter([(np.arange(36), pool)]), 36, pool, target, 6, steps=3000)
    x = np.vstack([_normalise(pool).toarray(), _normalise(target).toarray()])
    y = np.r_[np.zeros(36), np.ones(8)]
    weight = np.where(y == 1, 0.5 / 8, 0.5 / 36)

    def objective(wb):
        z = x @ wb[:-1] + wb[-1]
        return np.sum(weight * (np.logaddexp(0, z) - y * z)) + 0.5e-4 * wb[:-1] @ wb[:-1]

    wb = minimize(objective, np.zeros(33), method="L-BFGS-B", options={"ftol": 1e-15, "gtol": 1e-12}).x
    reference = x[:36] @ wb[:-1] + wb[-1]
    assert sps.spearmanr(score, reference).statistic > 0.95
    _, converged = classifier(lambda: iter([(np.arange(36), pool)]), 36, pool, target, 6, steps=20_000)
    np.testing.assert_allclose(converged, reference, atol=1e-3)  # scores up to 16: the same regression
    assert set(chosen.tolist()) == set(np.argsort(-reference)[:6].tolist())  # the same six kept
    assert len(set(chosen.tolist()) & set(range(30, 36))) >= 5  # the target-like rows


def test_dsdm_keeps_exactly_the_k_largest_weights_ties_to_the_lower_index():
    from proxyscale.selection.methods import dsdm

    weights = np.array([0.5, 2.0, -1.0, 2.0, 0.7, 3.0])
    assert dsdm(weights, 3)[0].tolist() == [1, 3, 5]
    assert dsdm(weights, 2)[0].tolist() == [1, 5]  # 2.0 twice: the lower index
    assert dsdm(weights, 2, bottom=True)[0].tolist() == [0, 2]
    tied = np.tile(np.array([1.0, 0.0], np.float32), 50)  # ties among 100 values: unstable sorts reorder them
    assert dsdm(tied, 10)[0].tolist() == list(range(0, 20, 2))
    assert dsdm(tied, 10)[1].dtype == np.float64


def test_the_classifier_breaks_ties_to_the_lower_index():
    from scipy import sparse

    from proxyscale.selection.methods import classifier

    alike = sparse.csr_matrix(np.tile([[0.0, 1.0, 3.0], [1.0, 2.0, 0.0]], (50, 1)))  # two kinds, alternating
    target = sparse.csr_matrix([[0.0, 1.0, 3.0]])
    chosen, _ = classifier(lambda: iter([(np.arange(100), alike)]), 100, alike, target, 10)
    assert chosen.tolist() == list(range(0, 20, 2))  # the first ten target-like windows


def test_each_pass_of_fit_sees_every_example_once():
    from proxyscale.training.fit import schedule

    indices = np.array([3, 7, 11, 20, 21, 40, 41])
    batches = schedule(indices, passes=2.5, batch_size=3, seed=0)
    first, second, third = np.concatenate(batches[:3]), np.concatenate(batches[3:6]), np.concatenate(batches[6:])
    assert sorted(first) == sorted(second) == indices.tolist() and len(third) == 4  # round(2.5 x 7) = 18
    assert set(third) <= set(indices.tolist()) and len(set(third)) == 4
    assert [len(b) for b in batches] == [3, 3, 1, 3, 3, 1, 3, 1]  # batches stay within a pass
    assert not np.array_equal(first, second)  # a fresh permutation each pass


def test_seeded_draws_are_pinned_values_not_only_repeatable_ones():
    """Values fixed by numpy's PCG64 streams: a salted hash() or an unseeded draw would change them
    between processes, which comparing two calls in one process cannot see."""
    from proxyscale.attribution.lds import subset_mask, subset_seed
    from proxyscale.datamodels.budget import checkpoint_examples
    from proxyscale.datamodels.dataset import split_indices
    from proxyscale.datamodels.projectors import checkpoint_seed

    assert checkpoint_seed(0, 0) == PINNED["checkpoint_seed"]
    assert subset_seed(7, 0) == PINNED["subset_seed"]
    assert np.flatnonzero(subset_mask(12, 0.5, 7, 0)).tolist() == PINNED["subset_mask"]
    train, targets = split_indices(10, 4, 2, 0, "x")
    assert (train.tolist(), targets.tolist()) == PINNED["split"]
    assert checkpoint_examples(None, {}, 9, {"epochs": 1}, 0, 0, "k").tolist() == list(range(9))


PINNED = {
    "checkpoint_seed": 821328063,
    "subset_seed": 2028854884,
    "subset_mask": [5, 6, 8, 9, 10, 11],
    "split": ([2, 4, 6, 7], [3, 5]),
}


@pytest.mark.parametrize("statistic", [stats.r2, stats.pearson, stats.spearman])
def test_correlations_are_defined_from_three_points_of_any_spread_and_nan_below(statistic, recwarn):
    """Three points are enough (a range of exactly 1 is a range like any other); two points, or a
    constant x or y, give NaN without numpy's division warnings."""
    r = sps.pearsonr([0.0, 0.5, 1.0], [1.0, 2.0, 4.0]).statistic
    expected = {stats.r2: r**2, stats.pearson: r, stats.spearman: 1.0}[statistic]
    assert statistic([0.0, 0.5, 1.0], [1.0, 2.0, 4.0]) == pytest.approx(expected)
    assert statistic([1.0, 2.0, 3.0], [0.0, 0.5, 1.0]) == pytest.approx(1.0)
    for x, y in (([1.0, 2.0], [3.0, 5.0]), ([2.0, 2.0, 2.0], [1.0, 2.0, 3.0]), ([1.0, 2.0, 3.0], [4.0, 4.0, 4.0])):
        assert np.isnan(statistic(x, y))
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_decision_accuracy_without_an_untied_pair_is_nan(recwarn):
    assert np.isnan(stats.decision_accuracy([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]  # no mean of an empty array
    assert stats.decision_accuracy([1.0, 2.0, 3.0], [1.0, 3.0, 2.0]) == pytest.approx(2 / 3)


def test_bootstrap_keeps_resamples_of_at_least_three_distinct_points():
    """With four points a resample often holds exactly three distinct ones: those count."""
    x, y = np.array([0.0, 1.0, 2.0, 3.0]), np.array([0.0, 1.5, 1.0, 3.0])
    lo, hi = stats.bootstrap_ci(x, y, stats.r2, n_boot=300, ci=0.9, seed=5)
    values = _resampled_r2(x, y, 300, seed=5)
    assert (lo, hi) == (np.quantile(values, 0.05), np.quantile(values, 0.95))
    assert all(np.isnan(v) for v in stats.bootstrap_ci(x, np.ones(4), stats.r2, 50, 0.9))  # never defined


def test_leave_one_out_r2_is_defined_for_any_spread_and_nan_for_a_constant_reference():
    small = stats.leave_one_out([0.0, 1.0, 2.0, 3.0], [0.0, 0.1, 0.2, 0.35])  # SS_tot 0.066875 < 1
    assert small["r2"] == pytest.approx(
        1 - np.sum((np.array([0, 0.1, 0.2, 0.35]) - small["predictions"]) ** 2) / 0.066875
    )
    assert np.isnan(stats.leave_one_out([0.0, 1.0, 2.0, 3.0], [1.0, 1.0, 1.0, 1.0])["r2"])


def test_per_sample_r2_of_a_constant_sample_is_nan_without_warnings(recwarn):
    proxy = np.array([[1.0, 2.0], [2.0, 2.0], [3.0, 2.0]])
    out = stats.per_sample_r2(proxy, np.array([[1.0, 5.0], [2.0, 6.0], [4.0, 7.0]]))
    assert out[0] == pytest.approx(sps.pearsonr([1, 2, 3], [1, 2, 4]).statistic ** 2) and np.isnan(out[1])
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_the_seeded_resamplings_default_to_seed_0():
    """The reports call these without a seed: their documented default (0) is what makes them rerun alike."""
    proxy, reference = np.random.default_rng(0).normal(size=(2, 6, 4))
    null = stats.per_sample_r2_null(proxy, reference, 5)
    assert np.array_equal(null, stats.per_sample_r2_null(proxy, reference, 5, seed=0))
    assert not np.array_equal(null, stats.per_sample_r2_null(proxy, reference, 5, seed=1))
    x, y = np.arange(8.0), np.arange(8.0) + np.cos(np.arange(8.0))
    assert stats.bootstrap_ci(x, y, stats.r2, 50, 0.9) == stats.bootstrap_ci(x, y, stats.r2, 50, 0.9, seed=0)
    assert stats.bootstrap_ci(x, y, stats.r2, 50, 0.9) != stats.bootstrap_ci(x, y, stats.r2, 50, 0.9, seed=1)
    assert stats.mean_ci(y, 50, 0.9) == stats.mean_ci(y, 50, 0.9, seed=0) != stats.mean_ci(y, 50, 0.9, seed=1)


def test_hashed_ngrams_are_pinned_counts_of_a_fixed_hash():
    """The hash is part of what DSIR and the classifier select: tokens [1, 2] in 1,000 buckets are unigrams
    1,000,003 x t mod 1,000 (3, 6) and the bigram (1,000,003 x 1 + 998,244,353 x 2 + 7) mod 1,000 = 716,
    (2, 1) hashes to 366,
    also for uint16 shards' tokens; counts are float32, a block of the pool at a time."""
    from proxyscale.data.ngrams import hashed_ngrams, ngram_ids, pool_blocks

    assert ngram_ids(np.array([1, 2], np.uint16), 1000).tolist() == [[3, 6, 716]]
    counts = hashed_ngrams([np.array([1, 2, 1], np.uint16), np.array([2], np.uint16)], 1000)
    assert counts.dtype == np.float32 and counts.shape == (2, 1000)
    row = counts[0].tocoo()
    assert dict(zip(row.col.tolist(), row.data.tolist())) == {3: 2.0, 6: 1.0, 716: 1.0, 366: 1.0}  # (2, 1): 366
    assert counts[1].nonzero()[1].tolist() == [6]
    assert hashed_ngrams([], 8).shape == (0, 8)
    windows = [np.array([r, r + 1]) for r in range(5)]
    pool = type("Pool", (), {"__len__": lambda self: 5, "tokens": lambda self, rows: [windows[r] for r in rows]})()
    blocks = list(pool_blocks(pool, 1000, block_rows=2))
    assert [rows.tolist() for rows, _ in blocks] == [[0, 1], [2, 3], [4]]
    assert all((c != hashed_ngrams([windows[r] for r in rows], 1000)).nnz == 0 for rows, c in blocks)


def test_selection_sizes_and_the_bounds_of_k():
    from proxyscale.datamodels.tasks import LMTask
    from proxyscale.errors import ConfigError
    from proxyscale.selection.methods import dsdm, selection_size

    task, d16 = LMTask(vocab_size=257, context_length=64), {"d_model": 16, "n_layers": 2, "n_heads": 4}
    assert selection_size(100, 0.001, task, d16, 20) == 1  # at least one window
    assert selection_size(3345, None, task, d16, 20) == 3345  # the reference's budget fills the pool exactly
    assert dsdm(np.array([0.3, 0.1]), 2)[0].tolist() == [0, 1]  # keeping the whole pool is allowed
    with pytest.raises(ConfigError, match="cannot keep 0 of 2"):
        dsdm(np.array([0.3, 0.1]), 0)


def test_random_and_dsir_selections_are_the_top_k_of_their_seeded_draws():
    """random keeps the k largest of its uniform draws; DSIR the k largest log weight + Gumbel noise
    (sampling without replacement in proportion to the importance weights), the noise drawn from the seed."""
    from scipy import sparse

    from proxyscale.selection.methods import dsir, random_subset

    chosen, score = random_subset(50, 5, seed=3)
    assert set(chosen.tolist()) == set(np.flatnonzero(score >= np.sort(score)[-5]).tolist())
    flat = sparse.csr_matrix(np.ones((40, 1)))  # every window alike: the selection is the noise alone
    picks = {tuple(dsir(lambda: iter([(np.arange(40), flat)]), 40, flat[:1], 10, seed)[0]) for seed in range(3)}
    assert len(picks) == 3
    noise = np.random.default_rng(3).gumbel(size=40)
    assert dsir(lambda: iter([(np.arange(40), flat)]), 40, flat[:1], 10, 3)[0].tolist() == sorted(
        np.argsort(-noise)[:10]
    )
    counts = sparse.csr_matrix(np.r_[np.tile([[20.0, 0.0]], (5, 1)), np.tile([[0.0, 20.0]], (35, 1))])
    target = sparse.csr_matrix([[1.0, 0.0]])
    chosen, log_weight = dsir(lambda: iter([(np.arange(40), counts)]), 40, target, 5, seed=0)
    assert chosen.tolist() == [0, 1, 2, 3, 4]  # weights e^20 apart: the noise cannot reorder them
