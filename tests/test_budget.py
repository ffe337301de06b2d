"""The datamodel experiments' training budgets: Chinchilla-sized random subsets for language models,
epochs for vision, and the selection size set by the reference's budget."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from proxyscale.datamodels.budget import budget_windows, checkpoint_examples, passes
from proxyscale.datamodels.examples import Arrays
from proxyscale.datamodels.tasks import LMTask
from proxyscale.errors import ConfigError
from proxyscale.selection.methods import selection_size
from proxyscale.training.fit import fit
from proxyscale.training.recipe import Recipe

TASK = LMTask(vocab_size=257, context_length=64)
D16 = {"d_model": 16, "n_layers": 2, "n_heads": 4}
D8 = {"d_model": 8, "n_layers": 2, "n_heads": 4}
CHINCHILLA = {"tokens_per_param": 20}


def test_budget_is_twenty_tokens_per_parameter_in_windows_of_scored_positions():
    # d16: 2 blocks of 12 d^2 + 13 d, final norm 2 d, tied embedding 257 d = 10,704 parameters
    params = 2 * (12 * 16 * 16 + 13 * 16) + 2 * 16 + 257 * 16
    assert params == 10_704
    assert budget_windows(TASK, D16, 20) == math.ceil(20 * 10_704 / 64) == 3345
    assert budget_windows(TASK, D16, 0.5) == math.ceil(0.5 * 10_704 / 64)


def test_each_checkpoint_trains_on_its_own_seeded_subset_of_its_budget():
    subsets = [checkpoint_examples(TASK, D16, 10_000, CHINCHILLA, 0, c, "selection.pool.size") for c in range(3)]
    assert all(len(s) == 3345 and len(np.unique(s)) == 3345 for s in subsets)
    assert not np.array_equal(subsets[0], subsets[1]) and not np.array_equal(subsets[1], subsets[2])
    again = checkpoint_examples(TASK, D16, 10_000, CHINCHILLA, 0, 1, "selection.pool.size")
    assert np.array_equal(again, subsets[1])
    other_seed = checkpoint_examples(TASK, D16, 10_000, CHINCHILLA, 1, 1, "selection.pool.size")
    assert not np.array_equal(other_seed, subsets[1])
    # a smaller size's subset lies inside the larger size's for the same checkpoint
    small = checkpoint_examples(TASK, D8, 10_000, CHINCHILLA, 0, 1, "selection.pool.size")
    assert len(small) == budget_windows(TASK, D8, 20) and set(small) <= set(subsets[1])
    # vision keeps the whole training set
    assert np.array_equal(checkpoint_examples(None, {}, 7, {"epochs": 3}, 0, 2, "attribution.n_train"), np.arange(7))


def test_a_pool_smaller_than_the_budget_is_a_config_error_naming_the_key():
    message = (
        "attribution.n_train: 2,000 windows are fewer than the 3,345 windows (214,080 tokens = 20 x 10,704 params) "
        "a checkpoint of this size trains on; raise it or use a smaller size"
    )
    with pytest.raises(ConfigError) as error:
        checkpoint_examples(TASK, D16, 2000, CHINCHILLA, 0, 0, "attribution.n_train")
    assert str(error.value) == message
    assert len(checkpoint_examples(TASK, D16, 3345, CHINCHILLA, 0, 0, "attribution.n_train")) == 3345  # just enough


def test_passes_are_epochs_for_vision_and_budget_over_examples_for_language_models():
    assert passes(None, {}, 100, {"epochs": 15}, 4, "w32") == 15.0
    assert passes(TASK, D16, 3345, CHINCHILLA, 4, "d16") == 1.0
    assert passes(TASK, D16, 1000, CHINCHILLA, 4, "d16") == pytest.approx(3.345)
    with pytest.raises(
        ConfigError, match=r"^LDS subset 3: .* would repeat its 500 windows 6\.7 times, more than model"
    ):
        passes(TASK, D16, 500, CHINCHILLA, 4, "LDS subset 3")
    assert passes(TASK, D16, 3345, CHINCHILLA, 1, "d16") == 1.0  # exactly the most repetition allowed


def test_fractional_passes_train_on_that_many_examples_and_count_six_n_d_flops():
    task = LMTask(vocab_size=20, context_length=8)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 20, (30, 9))
    y = np.ones_like(x, dtype=bool)
    y[:, 0] = False
    size = {"d_model": 8, "n_layers": 1, "n_heads": 2}
    model, meta = fit(
        task, size, Arrays(x, y), np.arange(10, 30), Recipe(batch_size=4, lr=0.01), 2.5, 0, torch.device("cpu")
    )
    assert meta["examples"] == 20 and meta["examples_seen"] == 50 and meta["repetition"] == 2.5
    assert meta["steps"] == 5 + 5 + 3  # batches stay within a pass: 20 = 5 x 4, then 10 = 4 + 4 + 2
    assert meta["flops"] == pytest.approx(6 * meta["params"] * 50 * 8)  # 6 N D, D = 50 windows x 8 positions


def test_selection_keeps_the_reference_budget_unless_a_fraction_is_given():
    assert selection_size(16_000, None, TASK, D16, 20) == 3345
    assert selection_size(16_000, 0.25, TASK, D16, 20) == 4000
    with pytest.raises(ConfigError, match=r"^selection\.pool\.size: 3,000 windows cannot hold .* 3,345 windows"):
        selection_size(3000, None, TASK, D16, 20)
