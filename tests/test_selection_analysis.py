"""DsDm report tables on constructed retraining results with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from conftest import windows_dataset
from proxyscale.selection.analysis import composition_table, cost_table, results_table, setup_summary


def _retrains(shift: dict[str, float], n=40, seeds=2) -> pd.DataFrame:
    """Per method a loss that is the random one plus ``shift`` (plus small noise), on target 't'."""
    rng = np.random.default_rng(0)
    base = rng.normal(3.0, 0.3, n)
    frames = []
    for method, delta in shift.items():
        for seed in range(seeds):
            frames.append(
                pd.DataFrame(
                    {
                        "target": "t",
                        "method": method,
                        "seed": seed,
                        "holdout_task": "t",
                        "example_id": np.arange(n),
                        "loss": base + delta + rng.normal(0, 0.01, n),
                        "token_accuracy": 0.5 - delta,
                        "train_flops": 1e9,
                        "train_seconds": 2.0,
                        "examples": 10,
                    }
                )
            )
            # the same model scored on another task's holdout must not count toward this target
            frames.append(frames[-1].assign(holdout_task="other", loss=100.0))
    return pd.concat(frames, ignore_index=True)


COMPUTE = pd.DataFrame(
    {
        "size": ["big", "small"],
        "params": [1000, 100],
        "checkpoints": [2, 2],
        "examples": [500, 50],
        "repetition": [1.0, 1.0],
        "compute_ratio": [1.0, 10.0],
        "train_flops": [2e10, 2e9],
        "trak_flops": [1e9, 1e8],
        "train_seconds": [4.0, 1.0],
        "trak_seconds": [3.0, 1.0],
    }
)


def test_results_table_compares_with_random_on_the_same_holdout_examples():
    retrains = _retrains({"dsdm-big": -0.2, "dsdm-small": 0.0, "bot_dsdm-big": 0.3, "random": 0.0})
    table = results_table(retrains, COMPUTE, n_boot=200, ci=0.95).set_index("method")
    assert abs(table.loc["dsdm-big", "loss_delta"] + 0.2) < 0.01 and table.loc["dsdm-big", "beats_random"]
    assert not table.loc["dsdm-small", "beats_random"] and not table.loc["bot_dsdm-big", "beats_random"]
    assert table.loc["dsdm-small", "compute_ratio"] == 10 and np.isnan(table.loc["random", "compute_ratio"])
    assert abs(table.loc["random", "loss"] - 3.0) < 0.2  # the 'other' task's 100s are excluded
    assert table.loc["dsdm-big", "loss_lo"] < table.loc["dsdm-big", "loss"] < table.loc["dsdm-big", "loss_hi"]
    assert np.isclose(table.loc["bot_dsdm-big", "token_accuracy_delta"], -0.3) and np.isnan(
        table.loc["random", "loss_delta"]
    )
    assert (table["seeds"] == 2).all() and (table["examples"] == 40).all()


def test_cost_table_adds_trak_to_training_and_compares_with_one_reference_run():
    cost = cost_table(COMPUTE, _retrains({"random": 0.0})).set_index("size")
    assert cost.loc["big", "selection_flops"] == 2.1e10
    assert cost.loc["small", "selection_over_reference"] == 2.1e9 / 1e9
    assert cost.loc["small", "selection_seconds"] == 2.0 and cost.loc["big", "reference_train_seconds"] == 2.0


def test_composition_table_gives_source_shares_of_pool_and_selections():
    source = np.array([0, 0, 1, 1, 1, 2])
    chosen = pd.DataFrame(
        {"pool_index": np.arange(6), "score": 0.0, "selected": [True, False, True, True, False, False]}
    )
    table = composition_table({("t", "dsir"): chosen}, source, ["a", "b", "c"])
    assert table.iloc[0][["a", "b", "c"]].tolist() == [2 / 6, 3 / 6, 1 / 6]
    assert table.iloc[1][["target", "method", "a", "b", "c"]].tolist() == ["t", "dsir", 1 / 3, 2 / 3, 0.0]


def test_setup_summary_describes_pool_targets_and_selection(tmp_path):
    arrays = {
        "train_inputs": np.zeros((50, 9), dtype=np.int64),
        "target_task": np.array([0, 0, 0, 1]),
        "holdout_task": np.array([0, 1, 1]),
    }
    data = windows_dataset(tmp_path, arrays, pool_sources=["web", "books"], targets=["squad", "lambada"])
    subsets = {("squad", "random"): pd.DataFrame({"selected": [True] * 10 + [False] * 40})}
    compute = pd.DataFrame(
        {
            "size": ["big", "small"],
            "checkpoints": [4, 4],
            "examples": [20, 5],
            "repetition": [1.0, 1.0],
            "proj_dim": [32, 16],
            "projection": ["dense Gaussian", "sparse Johnson-Lindenstrauss"],
        }
    )
    retrains = pd.DataFrame({"seed": [0, 0, 1], "repetition": [2.0, 2.0, 2.0]})
    setup = setup_summary(data, retrains, subsets, compute, "big", True, "too large")
    assert setup == {
        "n_pool": 50, "window": 9, "sources": ["web", "books"], "targets": ["squad", "lambada"], "n_targets": 3,
        "n_holdout": 1, "checkpoints": 4, "checkpoint_examples": {"big": 20, "small": 5}, "proj_dim": 32,
        "projection": "dense Gaussian and sparse Johnson-Lindenstrauss", "projection_warning": "too large",
        "q_term": True, "fraction": 0.2, "k": 10, "retrain_repetition": 2.0, "reference": "big",
    }  # fmt: skip
