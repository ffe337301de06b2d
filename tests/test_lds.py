"""LDS on cases with known answers."""

import numpy as np
import pytest

from proxyscale.attribution.lds import lds, lds_per_target, predicted_outputs


def test_exact_linear_datamodel_has_lds_one():
    rng = np.random.default_rng(0)
    n_train, n_targets, n_subsets = 200, 5, 40
    true_weights = rng.normal(size=(n_train, n_targets))
    subsets = rng.random((n_subsets, n_train)) < 0.5
    actual = subsets @ true_weights + 3.0  # a model whose output is exactly linear in the training set
    assert lds(true_weights, subsets, actual) == pytest.approx(1.0)
    assert lds(-true_weights, subsets, actual) == pytest.approx(-1.0)


def test_noisy_and_random_datamodels_score_lower():
    rng = np.random.default_rng(1)
    true_weights = rng.normal(size=(300, 8))
    subsets = rng.random((50, 300)) < 0.5
    actual = subsets @ true_weights
    noisy = true_weights + rng.normal(scale=1.0, size=true_weights.shape)
    random = rng.normal(size=true_weights.shape)
    assert 0.4 < lds(noisy, subsets, actual) < 0.95
    assert abs(lds(random, subsets, actual)) < 0.2


def test_shapes_and_undefined_targets():
    subsets = np.array([[True, False], [False, True], [True, True]])
    assert predicted_outputs(np.array([[1.0], [2.0]]), subsets).ravel().tolist() == [1.0, 2.0, 3.0]
    per = lds_per_target(np.array([[1.0, 1.0], [2.0, 1.0], [3.0, 1.0]]), np.array([[1.0, 0.0], [2.0, 1.0], [3.0, 2.0]]))
    assert per[0] == pytest.approx(1.0) and np.isnan(per[1])
    with pytest.raises(ValueError, match="differ in shape"):
        lds_per_target(np.zeros((3, 2)), np.zeros((3, 1)))
