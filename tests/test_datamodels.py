"""Datamodel averaging (with and without Q), top-k overlap, rank agreement, and the attribution report's tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from proxyscale.attribution.analysis import (
    datamodel_variants,
    example_texts,
    lds_table,
    lds_vs_checkpoints,
    mean_target_accuracy,
    overlap_table,
    setup_summary,
)
from proxyscale.datamodels.datamodel import datamodel, rank_correlation, top_k, top_k_overlap


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
    assert top_k_overlap(tau, other, 2).tolist() == [1.0, 0.0]


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


def test_lds_table_gives_both_variants_and_marks_the_configured_one():
    """The true weights are the raw scores times Q: with the Q term the reference's datamodel is exact
    (LDS 1); without it, rows are mis-weighted and the LDS falls; the noisy proxy is below either way."""
    tau, masks, actual = _linear_world()
    q = np.random.default_rng(3).uniform(0.05, 3.0, size=len(tau))
    raw = tau / q[:, None]
    noisy = raw + np.random.default_rng(1).normal(scale=1.0, size=tau.shape)
    variants = datamodel_variants({"ref": [raw], "proxy": [noisy]}, {"ref": [q], "proxy": [q]})
    compute = pd.DataFrame({"size": ["ref", "proxy"], "compute_ratio": [1.0, 10.0], "params": [100, 10]})
    table = lds_table(variants, False, masks, actual, compute, "ref", n_boot=200, ci=0.95)
    assert len(table) == 4 and table["configured"].tolist() == [True, True, False, False]
    lds = table.set_index(["q_term", "size"])["lds"]
    assert lds[True, "ref"] == pytest.approx(1.0)
    assert lds[False, "ref"] < 0.95
    assert lds[True, "proxy"] < lds[True, "ref"] and lds[False, "proxy"] < lds[False, "ref"]
    row = table[(table["size"] == "proxy") & table["q_term"]].iloc[0]
    assert row["lds_lo"] <= row["lds"] <= row["lds_hi"]
    assert row["relative_to_reference"] == pytest.approx(row["lds"])  # the reference of its own variant has LDS 1


def test_lds_improves_as_noisy_checkpoints_are_averaged():
    tau, masks, actual = _linear_world()
    rng = np.random.default_rng(2)
    ckpts = [tau + rng.normal(scale=3.0, size=tau.shape) for _ in range(8)]
    table = lds_vs_checkpoints({"s": ckpts}, {"s": [np.ones(len(tau))] * 8}, False, masks, actual)
    assert (
        table["checkpoints"].tolist() == list(range(1, 9)) * 2 and table["q_term"].tolist() == [False] * 8 + [True] * 8
    )
    mine = table[table["configured"]]
    assert mine["lds"].iloc[-1] > mine["lds"].iloc[0] + 0.1
    assert np.allclose(mine["lds"], table.loc[~table["configured"], "lds"])  # Q of ones: both variants agree


def test_overlap_table_reports_top_and_bottom_against_chance():
    tau, _, _ = _linear_world()
    table = overlap_table({"ref": tau, "same": tau.copy(), "flipped": -tau}, "ref", k=5)
    same = table[table["size"] == "same"].set_index("end")["overlap"]
    flipped = table[table["size"] == "flipped"].set_index("end")["overlap"]
    assert same.tolist() == [1.0, 1.0] and flipped.tolist() == [0.0, 0.0]
    assert table["chance"].iloc[0] == pytest.approx(5 / 60)


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
            "projection": ["sparse Johnson-Lindenstrauss", "sparse Johnson-Lindenstrauss"],
        }
    )
    arrays = {"train_inputs": np.zeros((10, 1, 4, 4)), "target_inputs": np.zeros((2, 1, 4, 4))}
    spec = {"setting": "vision", "family": "convnet", "image_shape": [1, 4, 4], "num_classes": 10}
    masks = np.array([[True] * 5 + [False] * 5, [False] * 5 + [True] * 5])
    setup = setup_summary(spec, arrays, "ref", compute, False, masks, 15.0, None)
    assert setup == {
        "setting": "vision", "description": "convnet on 1x4x4 images, 10 classes", "reference": "ref",
        "n_train": 10, "n_targets": 2, "checkpoints": 3, "checkpoint_examples": {"ref": 10, "a": 10},
        "checkpoint_passes": 15.0, "proj_dim": 64, "projection": "sparse Johnson-Lindenstrauss",
        "projection_warning": None, "q_term": False,
        "subsets": 2, "alpha": 0.5, "subset_repetition": 15.0,
    }  # fmt: skip


def test_example_texts_decode_windows_and_the_targets_scored_part():
    from proxyscale.data.tokenizer import ByteTokenizer

    arrays = {
        "train_inputs": np.array([list(b"hello")]),
        "target_inputs": np.array([list(b"Q: x A: yes")]),
        "target_labels": np.array([[False] * 8 + [True] * 3]),
    }
    assert example_texts(arrays, ByteTokenizer()) == {"train": ["hello"], "target": ["yes"]}
