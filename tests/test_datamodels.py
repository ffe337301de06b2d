"""Datamodel averaging (with and without Q), top-k overlap, rank agreement, and the attribution report's tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from proxyscale.attribution import analysis
from proxyscale.attribution.analysis import (
    datamodel_extremes,
    example_texts,
    lds_table,
    lds_vs_checkpoints,
    mean_target_accuracy,
    overlap_table,
    setup_summary,
    size_predictions,
)
from proxyscale.datamodels import datamodel as dm
from proxyscale.datamodels.datamodel import (
    CheckpointScores,
    TopK,
    datamodel,
    overlap,
    rank_correlation,
    sample_rows,
    top_k,
    write_datamodel,
)
from proxyscale.datamodels.examples import Arrays


def test_datamodel_averages_checkpoints_and_q_term_scales_rows():
    s1, s2 = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[3.0, 0.0], [1.0, 0.0]])
    q1, q2 = np.array([0.2, 0.4]), np.array([0.4, 0.8])
    assert np.allclose(datamodel([s1, s2], [q1, q2], q_term=False), [[2, 1], [2, 2]])
    # With Q: each training example's row times its Q averaged over checkpoints (0.3 and 0.6).
    assert np.allclose(datamodel([s1, s2], [q1, q2], q_term=True), [[0.6, 0.3], [1.2, 1.2]])
    with pytest.raises(ValueError):
        datamodel([], [], False)


def test_top_k_and_overlap():
    tau = np.array([[5.0, -1.0], [1.0, 3.0], [4.0, 0.0], [-2.0, 2.0]])
    assert top_k(tau, 2).T.tolist() == [[0, 2], [1, 3]]
    assert top_k(tau, 1, largest=False).tolist() == [[3, 0]]
    other = tau.copy()
    other[:, 1] = -other[:, 1]  # second target's ranking reversed
    assert overlap(top_k(tau, 2), top_k(other, 2)).tolist() == [1.0, 0.0]


def test_top_k_merged_block_by_block_is_the_top_k_of_the_whole_with_ties_to_the_lower_row():
    tau = np.random.default_rng(0).integers(0, 6, size=(97, 4)).astype(np.float32)  # many ties
    for largest in (True, False):
        merged = TopK(10, 4, largest)
        for start in range(0, 97, 13):
            merged.add(start, tau[start : start + 13])
        order = np.argsort(-tau if largest else tau, axis=0, kind="stable")[:10]
        assert np.array_equal(merged.indices(), order)


def _checkpoint_files(tmp_path, scores, qs):
    paths = []
    for i, s in enumerate(scores):
        paths.append(tmp_path / f"{i}.npy")
        np.save(paths[-1], s.astype(np.float32))
    return CheckpointScores(paths, [np.asarray(q, dtype=np.float32) for q in qs])


def test_the_datamodel_written_in_blocks_is_the_average_of_the_checkpoints(tmp_path, monkeypatch):
    monkeypatch.setattr(dm, "BLOCK_BYTES", 4 * 3 * 2 * 5)  # 5 rows per block
    rng = np.random.default_rng(0)
    scores, qs = [rng.normal(size=(23, 3)) for _ in range(2)], [rng.uniform(0.1, 1, 23) for _ in range(2)]
    files = _checkpoint_files(tmp_path, scores, qs)
    assert [rows.start for rows, _, _ in files.blocks()] == [0, 5, 10, 15, 20]
    for q_term in (False, True):
        write_datamodel(files, q_term, tmp_path / "tau.npy")
        np.testing.assert_allclose(np.load(tmp_path / "tau.npy"), datamodel(scores, qs, q_term), rtol=1e-5, atol=1e-6)


def test_rank_correlation_is_one_for_monotone_transforms_and_minus_one_for_reversal():
    tau = np.random.default_rng(0).normal(size=(50, 3))
    assert np.allclose(rank_correlation(tau, np.exp(tau)), 1)
    assert np.allclose(rank_correlation(tau, -tau), -1)


def _linear_world(seed=0, n=60, targets=5, m=40):
    rng = np.random.default_rng(seed)
    tau = rng.normal(size=(n, targets))
    masks = rng.random((m, n)) < 0.5
    actual = masks @ tau
    return tau, masks, actual


def test_lds_table_gives_both_variants_and_marks_the_configured_one(tmp_path):
    (tmp_path / "ref").mkdir()
    (tmp_path / "proxy").mkdir()
    """The true weights are the raw scores times Q: with the Q term the reference's datamodel is exact
    (LDS 1); without it, rows are mis-weighted and the LDS falls; the noisy proxy is below either way."""
    tau, masks, actual = _linear_world()
    q = np.random.default_rng(3).uniform(0.05, 3.0, size=len(tau))
    raw = tau / q[:, None]
    noisy = raw + np.random.default_rng(1).normal(scale=1.0, size=tau.shape)
    predictions = {
        "ref": size_predictions(_checkpoint_files(tmp_path / "ref", [raw], [q]), masks),
        "proxy": size_predictions(_checkpoint_files(tmp_path / "proxy", [noisy], [q]), masks),
    }
    compute = pd.DataFrame({"size": ["ref", "proxy"], "compute_ratio": [1.0, 10.0], "params": [100, 10]})
    table = lds_table(predictions, False, actual, compute, "ref", n_boot=200, ci=0.95)
    assert len(table) == 4 and table["configured"].tolist() == [True, True, False, False]
    lds = table.set_index(["q_term", "size"])["lds"]
    assert lds[True, "ref"] == pytest.approx(1.0)
    assert lds[False, "ref"] < 0.95
    assert lds[True, "proxy"] < lds[True, "ref"] and lds[False, "proxy"] < lds[False, "ref"]
    row = table[(table["size"] == "proxy") & table["q_term"]].iloc[0]
    assert row["lds_lo"] <= row["lds"] <= row["lds_hi"]
    assert row["relative_to_reference"] == pytest.approx(row["lds"])  # the reference of its own variant has LDS 1
    assert table.columns.tolist() == [
        "size", "q_term", "configured", "lds", "lds_lo", "lds_hi", "targets", "compute_ratio", "params",
        "relative_to_reference",
    ]  # fmt: skip
    assert table["size"].tolist() == ["ref", "proxy"] * 2 and table["params"].tolist() == [100, 10] * 2
    assert table["targets"].tolist() == [5] * 4
    without_q = table[~table["q_term"]].set_index("size")
    assert without_q.loc["proxy", "relative_to_reference"] == pytest.approx(
        without_q.loc["proxy", "lds"] / without_q.loc["ref", "lds"]
    )
    actual[:, 0] = 1.0  # a target whose output never changes has no rank correlation: left out and counted
    table = lds_table(predictions, False, actual, compute, "ref", n_boot=200, ci=0.95)
    assert table["targets"].tolist() == [4] * 4


def test_lds_improves_as_noisy_checkpoints_are_averaged(tmp_path, monkeypatch):
    monkeypatch.setattr(dm, "BLOCK_BYTES", 4 * 5 * 8 * 7)  # 7 rows per block: predictions summed over blocks
    tau, masks, actual = _linear_world()
    rng = np.random.default_rng(2)
    ckpts = [tau + rng.normal(scale=3.0, size=tau.shape) for _ in range(8)]
    predictions = size_predictions(_checkpoint_files(tmp_path, ckpts, [np.ones(len(tau))] * 8), masks)
    np.testing.assert_allclose(predictions[False, 3], masks @ np.mean(ckpts[:3], 0), rtol=1e-4, atol=1e-4)
    assert predictions[False, 3].dtype == np.float32  # masks as float32, the datamodel's dtype
    table = lds_vs_checkpoints({"s": predictions}, False, actual)
    assert table.columns.tolist() == ["size", "q_term", "configured", "checkpoints", "lds"]
    assert (
        table["checkpoints"].tolist() == list(range(1, 9)) * 2 and table["q_term"].tolist() == [False] * 8 + [True] * 8
    )
    assert table["configured"].tolist() == [True] * 8 + [False] * 8 and set(table["size"]) == {"s"}
    mine = table[table["configured"]]
    assert mine["lds"].iloc[-1] > mine["lds"].iloc[0] + 0.1
    assert np.allclose(mine["lds"], table.loc[~table["configured"], "lds"])  # Q of ones: both variants agree


def test_overlap_table_reports_top_and_bottom_against_chance(tmp_path):
    tau, _, _ = _linear_world()
    extremes = {}
    for name, t in {"ref": tau, "same": tau.copy(), "flipped": -tau}.items():
        np.save(tmp_path / f"{name}.npy", t.astype(np.float32))
        extremes[name] = datamodel_extremes(tmp_path / f"{name}.npy", 8, sample_rows(len(t)))
    table = overlap_table(extremes, "ref", k=5)
    same = table[table["size"] == "same"].set_index("end")["overlap"]
    flipped = table[table["size"] == "flipped"].set_index("end")["overlap"]
    assert same.tolist() == [1.0, 1.0] and flipped.tolist() == [0.0, 0.0]
    assert table["chance"].iloc[0] == pytest.approx(5 / 60)
    assert table.columns.tolist() == ["size", "end", "k", "overlap", "chance"] and set(table["k"]) == {5}
    assert table["size"].tolist() == ["same", "same", "flipped", "flipped"]
    assert table["end"].tolist() == ["top", "bottom"] * 2
    alone = overlap_table({"ref": extremes["ref"]}, "ref", k=5)
    assert alone.empty and alone.columns.tolist() == ["size", "end", "k", "overlap", "chance"]


def test_rank_table_gives_every_pairs_mean_spearman_over_targets():
    """Two targets over 4 sampled rows. a vs b: ranks (1,2,3,4) against (1,2,4,3) give Spearman
    1 - 6*2/(4*15) = 0.8 on the first target and ranks (4,3,2,1) against (1,2,3,4) give -1 on the
    second: mean -0.1."""
    a = np.array([[1.0, 4.0], [2.0, 3.0], [3.0, 2.0], [4.0, 1.0]])
    b = np.array([[10.0, 1.0], [20.0, 2.0], [40.0, 3.0], [30.0, 4.0]])
    extremes = {name: analysis.Extremes(np.zeros((1, 2)), np.zeros((1, 2)), s, 4) for name, s in [("a", a), ("b", b)]}
    table = analysis.rank_table(extremes)
    assert table.columns.tolist() == ["size_a", "size_b", "spearman"]
    assert list(zip(table["size_a"], table["size_b"])) == [("a", "a"), ("a", "b"), ("b", "a"), ("b", "b")]
    np.testing.assert_allclose(table["spearman"], [1.0, -0.1, -0.1, 1.0])


def test_report_summaries_of_the_attribution_run():
    metas = {"a": [{"target_accuracy": 0.5}, {"target_accuracy": 0.7}], "lm": [{"target_accuracy": None}]}
    assert mean_target_accuracy(metas) == {"a": pytest.approx(0.6), "lm": None}
    compute = pd.DataFrame(
        {
            "size": ["ref", "a"],
            "checkpoints": [3, 3],
            "examples": [10, 10],
            "repetition": [15.0, 15.0],
            "proj_dim": [64, 32],
            "projection": ["sparse Johnson-Lindenstrauss", "dense Gaussian"],
        }
    )
    spec = {"setting": "vision", "family": "convnet", "image_shape": [1, 4, 4], "num_classes": 10}
    masks = np.array([[True] * 5 + [False] * 5, [False] * 5 + [True] * 5])
    setup = setup_summary(spec, 10, 2, "ref", compute, False, masks, 15.0, None)
    assert setup == {
        "setting": "vision", "description": "convnet on 1x4x4 images, 10 classes", "reference": "ref",
        "n_train": 10, "n_targets": 2, "checkpoints": 3, "checkpoint_examples": {"ref": 10, "a": 10},
        "checkpoint_passes": 15.0, "proj_dim": 64, "projection": "dense Gaussian and sparse Johnson-Lindenstrauss",
        "projection_warning": None, "q_term": False,
        "subsets": 2, "alpha": 0.5, "subset_repetition": 15.0,
    }  # fmt: skip


def test_example_texts_decode_windows_and_the_targets_scored_part():
    from proxyscale.data.tokenizer import ByteTokenizer

    train = Arrays(np.array([list(b"hello"), list(b"world")]), np.ones((2, 5), dtype=bool))
    targets = Arrays(np.array([list(b"Q: x A: yes")]), np.array([[False] * 8 + [True] * 3]))
    texts = example_texts(train, targets, ByteTokenizer(), np.array([1, 1]), [0])
    assert texts == {"train": {1: "world"}, "target": {0: "yes"}}  # only the rows shown are decoded


def test_rank_sample_and_extremes_read_the_datamodel_a_block_at_a_time(tmp_path, monkeypatch):
    monkeypatch.setattr(dm, "RANK_SAMPLE", 30)
    monkeypatch.setattr(analysis, "BLOCK_BYTES", 4 * 5 * 9)  # 9 rows per block
    tau, _, _ = _linear_world()
    np.save(tmp_path / "tau.npy", tau.astype(np.float32))
    rows = dm.sample_rows(60, seed=1, limit=30)
    assert len(rows) == 30 and np.all(np.diff(rows) > 0) and np.array_equal(rows, dm.sample_rows(60, 1, 30))
    ext = datamodel_extremes(tmp_path / "tau.npy", 4, rows)
    np.testing.assert_array_equal(ext.sample, tau.astype(np.float32)[rows])
    np.testing.assert_array_equal(ext.top, top_k(tau.astype(np.float32), 4))
    np.testing.assert_array_equal(ext.bottom, top_k(tau.astype(np.float32), 4, largest=False))
