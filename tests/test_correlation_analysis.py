"""Reading the correlation experiment's inputs, as its report job does."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from proxyscale import stats
from proxyscale.correlation.analysis import (
    CorrelationResults,
    compute_table,
    drop_reserved,
    largest_proxy,
    loo_predictions,
    mean_losses,
    per_sample_null,
    per_sample_table,
    read_runs,
    read_tables,
    repeated_runs,
    scale_correlation,
    verdict,
)
from proxyscale.correlation.decisions import BOOTSTRAP_MODEL, PROBIT_MODEL, reliability_table, safe_decisions
from proxyscale.correlation.noise import noise_table, with_ceilings
from proxyscale.correlation.report import correlation_report
from proxyscale.io import save_json
from proxyscale.training.checkpoints import save_checkpoint


def test_tables_are_tagged_with_their_keys(tmp_path):
    paths = [tmp_path / "0.parquet", tmp_path / "1.parquet"]
    for i, path in enumerate(paths):
        pd.DataFrame({"loss": [float(i), float(i) + 0.5]}).to_parquet(path)
    table = read_tables([("books", "s"), ("web", "ref")], paths, ("dist", "size"))
    assert table.to_dict("list") == {"loss": [0.0, 0.5, 1.0, 1.5], "dist": ["books"] * 2 + ["web"] * 2,
                                     "size": ["s"] * 2 + ["ref"] * 2}  # fmt: skip
    assert table.index.tolist() == [0, 1, 2, 3]


def test_runs_are_the_checkpoints_summaries_then_the_imported_records(tmp_path):
    for name, params in (("a", 10), ("b", 20)):
        save_checkpoint(
            tmp_path / f"{name}.pt", torch.nn.Linear(1, 1), {"size": name, "params": params, "wall_seconds": 2.0}
        )
    save_json({"size": "c", "params": 30, "source": "elsewhere/c"}, tmp_path / "c.json")
    runs = read_runs([tmp_path / "a.pt", tmp_path / "b.pt"], [tmp_path / "c.json"])
    assert runs[["size", "params"]].to_dict("list") == {"size": ["a", "b", "c"], "params": [10, 20, 30]}
    assert runs["source"].isna().tolist() == [True, True, False]
    # what training measures is NaN for the imported model, and every such column exists
    assert runs["wall_seconds"].tolist()[:2] == [2.0, 2.0] and np.isnan(runs["wall_seconds"].iloc[2])
    assert runs[["final_loss", "max_shard_repetition", "mfu"]].isna().all().all()


def test_repeated_runs_lists_runs_that_see_data_twice_most_repeated_first():
    runs = pd.DataFrame(
        {"distribution": ["a", "b", "c"], "size": ["ref", "ref", "s"], "tokens": [10, 20, 5],
         "unique_tokens": [100, 5, 4], "repetition": [0.1, 4.0, 1.25], "most_repeated_shard": ["a", "b", "c"],
         "max_shard_repetition": [0.1, 4.0, 1.25]}
    )  # fmt: skip
    runs.loc[0, "max_shard_repetition"] = 1.0  # exactly one pass: not repeated
    expected = runs.iloc[[1, 2]][[*runs.columns]].reset_index(drop=True)
    pd.testing.assert_frame_equal(repeated_runs(runs), expected)


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


def _one_seed(summary: pd.DataFrame, means: pd.DataFrame) -> pd.DataFrame:
    """``summary`` with the ceilings of a run whose every size has one seed (none measured)."""
    return with_ceilings(summary, noise_table(means.assign(seed=0)), "ref")


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
    table = _one_seed(scale_correlation(means, compute, {"t": None}, "ref", n_boot=200, ci=0.9), means)
    # 'down' is cheapest with R^2 1 but moves opposite; 'noisy' misorders a pair; 'up' qualifies
    assert verdict(table, min_r2=0.5, min_decision_accuracy=0.95).iloc[0]["proxy"] == "up"
    loose = verdict(table, min_r2=0.0, min_decision_accuracy=0.0).iloc[0]
    assert loose["proxy"] == "noisy" and loose["compute_ratio"] == 8.0
    assert pd.isna(verdict(table, min_r2=1.1, min_decision_accuracy=0.0).iloc[0]["proxy"])
    # a test set no proxy serves next to one that is served: the report says "none" for it
    two = pd.concat([table, table.assign(test="u", r2_lo=0.0)], ignore_index=True)
    assert verdict(two, 0.5, 0.95)["proxy"].isna().tolist() == [False, True]


def test_accuracy_table_averages_each_example_over_distributions_and_bootstraps_the_examples():
    from proxyscale.correlation.analysis import accuracy_table

    correct = {("d0", 0): 1, ("d1", 0): 1, ("d0", 1): 1, ("d1", 1): 0, ("d0", 2): 0, ("d1", 2): 0}
    correct |= {("d0", 3): 1, ("d1", 3): 1}
    rows = [{"dist": d, "size": "ref", "test": "hs", "example_id": i, "loss": 1.0, "correct": float(c)}
            for (d, i), c in correct.items()]  # fmt: skip
    rows += [{"dist": "d0", "size": "ref", "test": "c4", "example_id": 0, "loss": 1.0, "correct": np.nan}]
    table = accuracy_table(pd.DataFrame(rows), {"hs": 0.25, "c4": None}, n_boot=2000, ci=0.9, seed=0)
    assert table[["test", "size", "chance", "examples"]].values.tolist() == [["hs", "ref", 0.25, 4]]  # c4 has none
    row = table.iloc[0]
    assert row["accuracy"] == pytest.approx(0.625)  # examples 1, 0.5, 0, 1
    mean, lo, hi = stats.mean_ci([1.0, 0.5, 0.0, 1.0], 2000, 0.9, seed=0)
    assert (row["accuracy_lo"], row["accuracy_hi"]) == (lo, hi) and lo < 0.625 < hi


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


FIGURES = {
    k: f"{k}.png"
    for k in ("curves", "scatter", "r2_compute", "r2_accuracy", "per_sample_fig", "per_sample_hist", "reliability_fig")
}


def _decisions(model: str = PROBIT_MODEL) -> pd.DataFrame:
    """Decisions of the proxies of :func:`_constructed` on test sets t and u, whose counts are worked out by hand
    at the threshold 0.9: up 5 decisions, 3 safe (2 of them held), 3 of 4 known outcomes held; noisy 4 (a tie on t
    is no decision), 1 safe that held, 3 of 4 held; down 3, none safe, none held. No safe decision: down on t,
    noisy and down on u."""
    rows = [("t", "up", 0.95, True), ("t", "up", 0.92, False), ("t", "up", 0.6, True), ("u", "up", 0.99, True),
            ("u", "up", 0.5, pd.NA), ("t", "noisy", 0.7, True), ("t", "noisy", 0.91, True),
            ("t", "noisy", np.nan, True), ("u", "noisy", 0.8, False), ("u", "noisy", 0.3, True),
            ("t", "down", 0.2, False), ("t", "down", 0.4, False), ("u", "down", 0.1, False)]  # fmt: skip
    table = pd.DataFrame(rows, columns=["test", "size", "probability", "held"])
    return table.astype({"held": "boolean"}).assign(model=model)


def _report_tables(decisions: pd.DataFrame | None = None) -> dict:
    """The fields of a :class:`CorrelationResults` of :func:`_constructed`'s losses (one test set, t) and
    ``decisions`` (default :func:`_decisions`), a decision safe at 0.9."""
    decisions = _decisions() if decisions is None else decisions
    means, compute = _constructed()
    summary = _one_seed(scale_correlation(means, compute, {"t": None}, "ref", n_boot=100, ci=0.9), means)
    noise = noise_table(means.assign(seed=0))
    per_sample = pd.DataFrame({"test": "t", "size": ["up", "down", "noisy"], "example_id": 0, "r2": [0.9, 0.8, 0.7]})
    null = pd.DataFrame({"test": "t", "size": ["up", "down", "noisy"], "r2": [0.2, 0.1, 0.3]})
    thresholds = {"min_r2": 0.5, "min_decision_accuracy": 0.95}
    compute = compute.assign(params=1, tokens=1, flops=1.0, tokens_per_second=1234.0, mfu=[0.4, float("nan"), 0.2, 0.3])
    repeated = pd.DataFrame(
        {"distribution": ["abstracts"], "size": ["ref"], "tokens": [10], "unique_tokens": [5], "repetition": [2.0],
         "most_repeated_shard": ["abstracts"], "max_shard_repetition": [2.0]}
    )  # fmt: skip
    accuracy = pd.DataFrame(
        {"test": "t", "size": ["ref", "up"], "accuracy": [0.3, 0.26], "accuracy_lo": [0.27, 0.23],
         "accuracy_hi": [0.33, 0.29], "chance": 0.25, "examples": 300}
    )  # fmt: skip
    return {"summary": summary, "compute": compute, "means": means, "accuracy": accuracy,
            "per_sample": per_sample, "null": null, "loo": None, "repeated": repeated, "thresholds": thresholds,
            "reference": "ref", "ci": 0.9, "noise": noise, "verdict": verdict(summary, **thresholds),
            "decisions": decisions, "reliability": reliability_table(decisions),
            "safe": safe_decisions(decisions, 0.9), "decision_probability": 0.9}  # fmt: skip


def test_report_shows_the_verdict_signed_correlation_decision_accuracy_and_null():
    tables = _report_tables()
    summary, thresholds, accuracy, repeated = (tables[k] for k in ("summary", "thresholds", "accuracy", "repeated"))
    text = correlation_report(CorrelationResults(**tables), FIGURES)
    accuracies = text.split("## Accuracy")[1].split("![")[0]
    assert "| test | ref | up | noisy | down | chance |" in accuracies  # sizes by compute, reference first
    assert "| t | 0.30 [0.27, 0.33] | 0.26 [0.23, 0.29] | - | - | 0.25 |" in accuracies
    assert "90% interval (bootstrap over test examples" in accuracies
    assert "Runs that see some data more than once (times the most repeated shard is seen): ref on abstracts" in text
    assert "- **t**: **up** (4x less compute): R^2 1.00" in text
    table = text.split("tokens_per_second | mfu |")[1].split("\n\n")[0]
    assert "1,234 | 40.0% |" in table and "1,234 | n/a |" in table  # the measured MFU, or n/a without a peak
    mixed = verdict(pd.concat([summary, summary.assign(test="u", r2_lo=0.0)]), **thresholds)
    tables |= {"verdict": mixed}
    text = correlation_report(
        CorrelationResults(**{**tables, "accuracy": accuracy.iloc[:0], "repeated": repeated.iloc[:0]}), FIGURES
    )
    assert "(no test set with an accuracy)" in text
    assert "No run sees any of its data more than once." in text
    assert "- **u**: none of the proxies clears the thresholds." in text
    assert "each of 5 training distributions (d0, d1, d2, d3, d4) and" in text
    marked = correlation_report(
        CorrelationResults(**tables, induced=("d3", "d4"), tokenizer="a byte-level BPE of 512 tokens"), FIGURES
    )
    assert "Text is tokenised with a byte-level BPE of 512 tokens. Losses are in nats per token in every" in marked
    assert "tokenised" not in text and "Losses are in nats per token in every table and figure." in text
    assert "MAE in nats per token." in text and "bits" not in text
    per_byte = correlation_report(
        CorrelationResults(**tables, tokenizer="each imported model's own tokenizer (ref)", unit="bits per byte"),
        FIGURES,
    )
    assert (
        "Text is tokenised with each imported model's own tokenizer (ref). Losses are in bits per byte in every "
        "table and figure: the models do not share one tokenizer" in per_byte
    )
    assert "MAE in bits per byte." in per_byte and "nats per token" not in per_byte
    assert (
        "each of 5 training distributions: 3 drawn from the sources (d0, d1, d2) and 2 selection-induced (d3, d4: "
        "selections of the dataset-selection experiment's pool, triangles in the figures) and evaluated" in marked
    )
    assert "move **opposite** to the reference's" in text and "down on t (r = -1.00)" in text
    decision = text.split("## Decision accuracy (90% CI)")[1].split("##")[0]
    assert "| t | 1.00 [1.00, 1.00] | 0.90 [" in decision  # columns: up, noisy, down (cheapest last)
    assert "0.90 (null 0.20)" in text and "0.70 (null 0.30)" in text


def test_report_says_how_likely_each_decision_is_to_hold_with_counts_by_hand():
    text = correlation_report(CorrelationResults(**_report_tables()), FIGURES)
    section = text.split("## How likely each decision is to hold")[1].split("\n## ")[0]
    assert text.index("## Seed noise") < text.index("## How likely each decision") < text.index("## Compute")
    assert "through a probit fit per proxy on the outcomes of the other test sets" in section
    assert "A decision is safe when its probability is at least 0.90 (`report.decision_probability`)." in section
    assert "![Reliability of the decision probabilities](reliability_fig.png)" in section
    assert "| up (4x) | 5 | 3 | 0.67 | 0.75 |" in section
    assert "| noisy (8x) | 4 | 1 | 1.00 | 0.75 |" in section
    assert "| down (16x) | 3 | 0 | - | 0.00 |" in section
    assert "- **t**: no safe decision from down.\n- **u**: no safe decision from noisy, down." in section
    sure = _decisions().assign(probability=lambda d: d["probability"].where(d["probability"].isna(), 0.95))
    section = correlation_report(CorrelationResults(**_report_tables(sure)), FIGURES)
    assert "- **t**: every proxy has a safe decision.\n- **u**: every proxy has a safe decision." in section
    one_test = _decisions(BOOTSTRAP_MODEL)  # a single test set: nothing to learn the transfer from
    section = correlation_report(CorrelationResults(**_report_tables(one_test)), FIGURES)
    assert "With a single test set there is no other one to learn from" in section and "probit" not in section
    mixed = _decisions().assign(model=lambda d: d["model"].where(d["test"] == "t", BOOTSTRAP_MODEL))
    section = correlation_report(CorrelationResults(**_report_tables(mixed)), FIGURES)
    assert "Where no other test set has a known outcome (up on u, noisy on u, down on u) it is the bootstrap" in section


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
    assert kept.index.tolist() == [0, 1, 2, 3] and list(kept.columns) == list(losses.columns)


def test_mean_losses_average_loss_and_accuracy_per_distribution_size_and_test():
    losses = pd.DataFrame(
        {"dist": ["a", "a", "a", "b"], "size": ["s", "s", "ref", "s"], "test": ["t"] * 4,
         "loss": [1.0, 2.0, 5.0, 7.0], "correct": [True, False, True, True]}
    )  # fmt: skip
    expected = pd.DataFrame(
        {"dist": ["a", "a", "b"], "size": ["ref", "s", "s"], "test": ["t"] * 3, "loss": [5.0, 1.5, 7.0],
         "accuracy": [1.0, 0.5, 1.0], "selection_induced": [False] * 3}
    )  # fmt: skip
    pd.testing.assert_frame_equal(mean_losses(losses), expected)
    expected["selection_induced"] = [False, False, True]  # b is a selection
    pd.testing.assert_frame_equal(mean_losses(losses, ["b"]), expected)


def test_compute_table_by_hand_and_from_runs_without_throughput_or_mfu():
    runs = pd.DataFrame(
        {"size": ["s", "ref", "s"], "params": [10, 100, 10], "tokens": [200, 2000, 200], "flops": [1.2e4, 1.2e6, 1.2e4],
         "wall_seconds": [2.0, 10.0, 4.0], "final_loss": [3.0, 2.0, 4.0], "max_shard_repetition": [0.5, 1.0, 2.0]}
    )  # fmt: skip
    expected = pd.DataFrame(
        {"size": ["ref", "s"], "origin": ["trained"] * 2, "params": [100, 10], "tokens": [2000, 200],
         "flops": [1.2e6, 1.2e4],
         "wall_seconds": [10.0, 3.0], "tokens_per_second": [200.0, 75.0], "mfu": [np.nan, np.nan],
         "final_train_loss": [2.0, 3.5], "max_repetition": [1.0, 2.0], "compute_ratio": [1.0, 100.0]}
    )  # fmt: skip
    pd.testing.assert_frame_equal(compute_table(runs, "ref"), expected)  # s: (200/2 + 200/4) / 2 tokens/s
    with_mfu = compute_table(runs.assign(mfu=[None, 0.4, None], tokens_per_second=[1.0, 2.0, 3.0]), "ref")
    assert with_mfu["mfu"].tolist()[0] == 0.4 and np.isnan(with_mfu["mfu"].tolist()[1])
    assert with_mfu["tokens_per_second"].tolist() == [2.0, 2.0]
    # an imported reference (read_runs gives it a source and NaN for what training measures)
    imported = runs.assign(source=["", "hub/ref", ""]).replace({"source": {"": None}})
    imported.loc[1, ["wall_seconds", "final_loss", "max_shard_repetition"]] = np.nan
    table = compute_table(imported, "ref")
    assert table["origin"].tolist() == ["imported", "trained"] and table["compute_ratio"].tolist() == [1.0, 100.0]
    assert np.isnan(table["wall_seconds"].iloc[0]) and np.isnan(table["tokens_per_second"].iloc[0])


def test_scale_correlation_reports_each_proxys_accuracy_and_the_tests_chance():
    means, compute = _constructed()
    means["accuracy"] = np.where(means["size"] == "up", 0.5, 0.25)
    table = scale_correlation(means, compute, {"t": 0.25}, "ref", n_boot=20, ci=0.9)
    assert table.columns.tolist() == [
        "test", "size", "compute_ratio", "r2", "r2_lo", "r2_hi", "pearson", "spearman", "spearman_lo",
        "spearman_hi", "decision_accuracy", "decision_accuracy_lo", "decision_accuracy_hi", "loo_r2", "loo_mae",
        "proxy_accuracy", "chance",
    ]  # fmt: skip
    assert table.set_index("size")["proxy_accuracy"].to_dict() == {"down": 0.25, "noisy": 0.25, "up": 0.5}
    assert table["chance"].tolist() == [0.25] * 3
    assert scale_correlation(means, compute, {}, "ref", n_boot=20, ci=0.9)["chance"].isna().all()


def test_loo_predictions_table_names_each_distributions_prediction():
    means, _ = _constructed()
    table = loo_predictions(means[means["size"].isin(["ref", "up"])], "ref")
    ref = np.array([3.0, 3.2, 3.5, 3.9, 4.4])
    expected = pd.DataFrame(
        {"test": ["t"] * 5, "size": ["up"] * 5, "dist": [f"d{i}" for i in range(5)], "reference_loss": ref,
         "predicted_loss": ref}
    )  # fmt: skip
    pd.testing.assert_frame_equal(table, expected)  # up is exactly linear in ref: each prediction is exact


def test_per_sample_tables_columns_index_and_default_seed():
    rows = [
        {"dist": f"d{d}", "size": size, "test": "t", "example_id": e, "loss": float(d * (e + 1) + (size == "p") * e)}
        for d in range(4)
        for size in ("ref", "p")
        for e in (5, 7)
    ]
    losses = pd.DataFrame(rows + [{**r, "test": "u"} for r in rows])
    table = per_sample_table(losses, "ref")
    assert table.columns.tolist() == ["test", "size", "example_id", "r2"] and table.index.tolist() == [0, 1, 2, 3]
    assert table[["test", "size", "example_id"]].values.tolist() == [["t", "p", 5], ["t", "p", 7], ["u", "p", 5],
                                                                     ["u", "p", 7]]  # fmt: skip
    null = per_sample_null(losses, "ref", n_perm=3)
    assert null.columns.tolist() == ["test", "size", "r2"] and null.index.tolist() == list(range(12))
    assert null["test"].tolist() == ["t"] * 6 + ["u"] * 6 and (null["size"] == "p").all()
    pd.testing.assert_frame_equal(null, per_sample_null(losses, "ref", n_perm=3, seed=0))
    other = per_sample_null(losses, "ref", n_perm=3, seed=1)["r2"].to_numpy()[:6]
    t = losses[losses["test"] == "t"]
    proxy, ref = (t[t["size"] == size].pivot_table(index="dist", columns="example_id", values="loss").to_numpy()
                  for size in ("p", "ref"))  # fmt: skip
    assert np.array_equal(null["r2"].to_numpy()[:6], stats.per_sample_r2_null(proxy, ref, 3, seed=0), equal_nan=True)
    assert np.array_equal(other, stats.per_sample_r2_null(proxy, ref, 3, seed=1), equal_nan=True)  # the seed passed


def test_verdict_thresholds_are_inclusive_and_a_zero_correlation_never_qualifies():
    summary = pd.DataFrame(
        {"test": ["t"] * 3, "size": ["a", "b", "c"], "compute_ratio": [2.0, 4.0, 8.0], "pearson": [0.9, 0.9, 0.0],
         "r2": [0.9, 0.8, 0.0], "r2_lo": [0.5, 0.5, 0.9], "decision_accuracy": [0.9, 0.8, 0.5],
         "decision_accuracy_lo": [0.7, 0.7, 0.9], "at_ceiling": pd.array([False, True, True], dtype="boolean")}
    )  # fmt: skip
    expected = pd.DataFrame(
        {"test": ["t"], "proxy": ["b"], "compute_ratio": [4.0], "r2": [0.8], "r2_lo": [0.5],
         "decision_accuracy": [0.8], "decision_accuracy_lo": [0.7], "at_ceiling": pd.array([True], dtype="boolean")}
    )  # fmt: skip
    pd.testing.assert_frame_equal(verdict(summary, min_r2=0.5, min_decision_accuracy=0.7), expected)


def test_a_statistic_added_to_the_table_reaches_the_summary_its_interval_and_the_headline(monkeypatch):
    from proxyscale.correlation import analysis, report

    means, compute = _constructed()
    slope = analysis.Statistic("slope", lambda x, y: float(np.polyfit(x, y, 1)[0]), True, "mean slope")
    monkeypatch.setattr(analysis, "STATISTICS", (*analysis.STATISTICS, slope))
    monkeypatch.setattr(report, "STATISTICS", analysis.STATISTICS)
    table = analysis.scale_correlation(means, compute, {"t": None}, "ref", n_boot=50, ci=0.9).set_index("size")
    assert table.columns[-4:].tolist() == ["slope_lo", "slope_hi", "proxy_accuracy", "chance"]
    assert table.loc["up", "slope"] == pytest.approx(0.5)  # up = 2 x reference + 1: every resample's slope is 1/2
    assert table.loc["up", "slope_lo"] == pytest.approx(0.5) and table.loc["up", "slope_hi"] == pytest.approx(0.5)
    headline = "\n".join(report._headline(table.reset_index(), compute, ["up", "down", "noisy"]))
    assert "| mean slope |" in headline.splitlines()[2] and "mean R^2" in headline
