"""Reading the correlation experiment's inputs, as its report job does."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from proxyscale.correlation.analysis import (
    drop_reserved,
    largest_proxy,
    per_sample_null,
    per_sample_table,
    read_runs,
    read_tables,
    repeated_runs,
    scale_correlation,
    verdict,
)
from proxyscale.training.checkpoints import save_checkpoint


def test_tables_are_tagged_with_their_keys(tmp_path):
    paths = [tmp_path / "0.parquet", tmp_path / "1.parquet"]
    for i, path in enumerate(paths):
        pd.DataFrame({"loss": [float(i), float(i) + 0.5]}).to_parquet(path)
    table = read_tables([("books", "s"), ("web", "ref")], paths, ("dist", "size"))
    assert table.to_dict("list") == {"loss": [0.0, 0.5, 1.0, 1.5], "dist": ["books"] * 2 + ["web"] * 2,
                                     "size": ["s"] * 2 + ["ref"] * 2}  # fmt: skip


def test_runs_are_the_checkpoints_summaries(tmp_path):
    for name, params in (("a", 10), ("b", 20)):
        save_checkpoint(tmp_path / f"{name}.pt", torch.nn.Linear(1, 1), {"size": name, "params": params})
    runs = read_runs([tmp_path / "a.pt", tmp_path / "b.pt"])
    assert runs.to_dict("list") == {"size": ["a", "b"], "params": [10, 20]}


def test_repeated_runs_lists_runs_that_see_data_twice_most_repeated_first():
    runs = pd.DataFrame(
        {"distribution": ["a", "b", "c"], "size": ["ref", "ref", "s"], "tokens": [10, 20, 5],
         "unique_tokens": [100, 5, 4], "repetition": [0.1, 4.0, 1.25], "most_repeated_shard": ["a", "b", "c"],
         "max_shard_repetition": [0.1, 4.0, 1.25]}
    )  # fmt: skip
    assert repeated_runs(runs)["distribution"].tolist() == ["b", "c"]


def test_largest_proxy_is_the_first_non_reference_size_by_flops():
    compute = pd.DataFrame({"size": ["ref", "l", "s"], "flops": [9.0, 4.0, 1.0]})
    assert largest_proxy(compute, "ref") == "l"


def _constructed():
    """Mean losses of 5 distributions: proxy 'up' is 2 x reference + 1 (R^2 1), 'down' is -reference
    (R^2 1, opposite), 'noisy' swaps the order of the last two distributions."""
    ref = np.array([3.0, 3.2, 3.5, 3.9, 4.4])
    sizes = {"ref": ref, "up": 2 * ref + 1, "down": -ref, "noisy": np.array([3.0, 3.2, 3.5, 4.4, 3.9])}
    rows = [
        {"dist": f"d{i}", "size": s, "test": "t", "loss": v[i], "accuracy": np.nan}
        for s, v in sizes.items()
        for i in range(5)
    ]
    compute = pd.DataFrame({"size": ["ref", "up", "noisy", "down"], "compute_ratio": [1.0, 4.0, 8.0, 16.0]})
    return pd.DataFrame(rows), compute


def test_scale_correlation_on_constructed_losses():
    means, compute = _constructed()
    table = scale_correlation(means, compute, {"t": None}, "ref", n_boot=200, ci=0.9).set_index("size")
    assert table.loc["up", "r2"] == pytest.approx(1.0) and table.loc["up", "pearson"] == pytest.approx(1.0)
    assert table.loc["down", "r2"] == pytest.approx(1.0) and table.loc["down", "pearson"] == pytest.approx(-1.0)
    assert table.loc["up", "decision_accuracy"] == 1.0 and table.loc["down", "decision_accuracy"] == 0.0
    assert table.loc["noisy", "decision_accuracy"] == pytest.approx(9 / 10)
    assert table.loc["up", "loo_r2"] == pytest.approx(1.0) and table.loc["up", "loo_mae"] == pytest.approx(0, abs=1e-9)
    x, y = means[means["size"] == "noisy"]["loss"].to_numpy(), means[means["size"] == "ref"]["loss"].to_numpy()
    assert table.loc["noisy", "r2"] == pytest.approx(np.corrcoef(x, y)[0, 1] ** 2)
    assert table.loc["noisy", "r2_lo"] <= table.loc["noisy", "r2"] <= table.loc["noisy", "r2_hi"]


def test_verdict_names_the_cheapest_proxy_that_agrees_and_never_an_opposite_one():
    means, compute = _constructed()
    table = scale_correlation(means, compute, {"t": None}, "ref", n_boot=200, ci=0.9)
    # 'down' is cheapest with R^2 1 but moves opposite; 'noisy' misorders a pair; 'up' qualifies
    assert verdict(table, min_r2=0.5, min_decision_accuracy=0.95).iloc[0]["proxy"] == "up"
    loose = verdict(table, min_r2=0.0, min_decision_accuracy=0.0).iloc[0]
    assert loose["proxy"] == "noisy" and loose["compute_ratio"] == 8.0
    assert pd.isna(verdict(table, min_r2=1.1, min_decision_accuracy=0.0).iloc[0]["proxy"])
    # a test set no proxy serves next to one that is served: the report says "none" for it
    two = pd.concat([table, table.assign(test="u", r2_lo=0.0)], ignore_index=True)
    assert verdict(two, 0.5, 0.95)["proxy"].isna().tolist() == [False, True]


def test_per_sample_table_and_its_null():
    rows = []
    for d, (a, b) in enumerate([(1.0, 2.0), (2.0, 1.0), (3.0, 4.0), (4.0, 3.0)]):
        # example 0: proxy equals reference; example 1: proxy is unrelated (constant shift pattern)
        rows += [
            {"dist": f"d{d}", "size": "ref", "test": "t", "example_id": 0, "loss": a},
            {"dist": f"d{d}", "size": "p", "test": "t", "example_id": 0, "loss": a},
            {"dist": f"d{d}", "size": "ref", "test": "t", "example_id": 1, "loss": b},
            {"dist": f"d{d}", "size": "p", "test": "t", "example_id": 1, "loss": [1.0, 1.0, 2.0, 2.0][d] + 0.1 * d},
        ]
    losses = pd.DataFrame(rows)
    table = per_sample_table(losses, "ref").set_index("example_id")
    assert table.loc[0, "r2"] == pytest.approx(1.0)
    x, y = np.array([1.0, 1.1, 2.2, 2.3]), np.array([2.0, 1.0, 4.0, 3.0])
    assert table.loc[1, "r2"] == pytest.approx(np.corrcoef(x, y)[0, 1] ** 2)
    null = per_sample_null(losses, "ref", n_perm=30)
    assert len(null) == 30 * 2 and null["r2"].median() < table["r2"].median()


def test_report_shows_the_verdict_signed_correlation_decision_accuracy_and_null():
    from proxyscale.correlation.report import correlation_report

    means, compute = _constructed()
    summary = scale_correlation(means, compute, {"t": None}, "ref", n_boot=100, ci=0.9)
    per_sample = pd.DataFrame({"test": "t", "size": ["up", "down", "noisy"], "example_id": 0, "r2": [0.9, 0.8, 0.7]})
    null = pd.DataFrame({"test": "t", "size": ["up", "down", "noisy"], "r2": [0.2, 0.1, 0.3]})
    thresholds = {"min_r2": 0.5, "min_decision_accuracy": 0.95}
    figures = {
        k: f"{k}.png" for k in ("curves", "scatter", "r2_compute", "r2_accuracy", "per_sample_fig", "per_sample_hist")
    }
    compute = compute.assign(params=1, tokens=1, flops=1.0, tokens_per_second=1234.0, mfu=[0.4, float("nan"), 0.2, 0.3])
    repeated = pd.DataFrame(
        {"distribution": ["abstracts"], "size": ["ref"], "tokens": [10], "unique_tokens": [5], "repetition": [2.0],
         "most_repeated_shard": ["abstracts"], "max_shard_repetition": [2.0]}
    )  # fmt: skip
    text = correlation_report(
        summary,
        compute,
        means,
        per_sample,
        null,
        verdict(summary, **thresholds),
        repeated,
        thresholds,
        "ref",
        0.9,
        figures,
    )
    assert "Runs that see some data more than once (times the most repeated shard is seen): ref on abstracts" in text
    assert "- **t**: **up** (4x less compute): R^2 1.00" in text
    table = text.split("tokens_per_second | mfu |")[1].split("\n\n")[0]
    assert "1,234 | 40.0% |" in table and "1,234 | n/a |" in table  # the measured MFU, or n/a without a peak
    mixed = verdict(pd.concat([summary, summary.assign(test="u", r2_lo=0.0)]), **thresholds)
    text = correlation_report(
        summary, compute, means, per_sample, null, mixed, repeated.iloc[:0], thresholds, "ref", 0.9, figures
    )
    assert "No run sees any of its data more than once." in text
    assert "- **u**: none of the proxies clears the thresholds." in text
    assert "move **opposite** to the reference's" in text and "down on t (r = -1.00)" in text
    decision = text.split("## Decision accuracy (90% CI)")[1].split("##")[0]
    assert "| t | 1.00 [1.00, 1.00] | 0.90 [" in decision  # columns: up, noisy, down (cheapest last)
    assert "0.90 (null 0.20)" in text and "0.70 (null 0.30)" in text


def test_the_selection_target_part_and_its_passages_leave_every_evaluation_of_that_test_set():
    testset = pd.DataFrame({"example_id": [0, 1, 2, 3, 4], "passage": [10, 10, 11, 12, 13]})
    split = pd.DataFrame({"example_id": [0, 3], "passage": [10, 12], "part": ["target", "target"]})
    split = pd.concat([split, pd.DataFrame({"example_id": [4], "passage": [13], "part": ["holdout"]})])
    losses = pd.DataFrame(
        {
            "test": ["squad"] * 5 + ["c4"] * 2,
            "example_id": [0, 1, 2, 3, 4, 0, 1],
            "dist": "books",
            "loss": np.arange(7.0),
        }
    )
    kept, dropped = drop_reserved(losses, {"squad": testset, "c4": testset}, {"squad": split})
    # example 1 shares example 0's passage; the holdout part and other test sets stay
    assert kept["loss"].tolist() == [2.0, 4.0, 5.0, 6.0] and dropped == {"squad": 3}
