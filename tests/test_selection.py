"""Selectors on constructed cases with a known answer: DsDm (sign and ends), DSIR, classifier, random."""

from __future__ import annotations

import numpy as np
import pytest

from proxyscale.errors import ConfigError
from proxyscale.selection import classifier, dsdm, dsir, hashed_ngrams, random_subset


def test_dsdm_keeps_the_examples_predicted_to_raise_target_outputs_most():
    rng = np.random.default_rng(0)
    tau = rng.normal(scale=0.1, size=(50, 4))
    best = [3, 17, 41]
    tau[best] += 1.0  # these raise every target's margin (lower its loss) the most
    tau[[5, 6, 7]] -= 1.0
    chosen, score = dsdm(tau, 3)
    assert chosen.tolist() == best and score.shape == (50,)
    assert dsdm(tau, 3, bottom=True)[0].tolist() == [5, 6, 7]


def test_dsdm_selection_predicts_a_higher_output_than_random_under_its_own_datamodel():
    tau = np.random.default_rng(1).normal(size=(200, 10))
    chosen, _ = dsdm(tau, 50)
    randoms = [tau[random_subset(200, 50, s)[0]].sum(0).mean() for s in range(20)]
    assert tau[chosen].sum(0).mean() > max(randoms)


def _texts(rng, alphabet, n, length=40):
    return [rng.choice(alphabet, size=length) for _ in range(n)]


def test_dsir_and_classifier_pick_the_target_like_pool_examples():
    rng = np.random.default_rng(0)
    a, b = np.arange(0, 10), np.arange(10, 20)  # two token "languages"
    pool_seqs = _texts(rng, a, 80) + _texts(rng, b, 20)  # 20 target-like examples at 80..99
    target_seqs = _texts(rng, b, 30)
    pool, target = hashed_ngrams(pool_seqs, 256), hashed_ngrams(target_seqs, 256)
    truth = set(range(80, 100))
    for chosen, _ in (dsir(pool, target, 20, seed=0), classifier(pool, target, 20)):
        assert len(chosen) == 20 and len(truth & set(chosen.tolist())) >= 18


def test_hashed_ngrams_count_unigrams_and_bigrams():
    counts = hashed_ngrams([np.array([1, 2, 1])], 1024)
    assert counts.sum() == 3 + 2 and counts.max() == 2  # token 1 twice


def test_random_subset_is_seeded_and_asking_for_too_many_is_an_error():
    assert np.array_equal(random_subset(30, 10, 4)[0], random_subset(30, 10, 4)[0])
    assert len(set(random_subset(30, 10, 4)[0])) == 10
    with pytest.raises(ConfigError, match="cannot keep 40 of 30"):
        random_subset(30, 40, 0)
