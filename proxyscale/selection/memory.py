"""How much host memory the selection experiment's own jobs take, for the plan (``snakemake plan``),
the way :mod:`proxyscale.training.memory` sits beside training.

A ``select`` job holds pool-sized score and order vectors, the classifier's sample of at most
:data:`CLASSIFIER_NGRAMS` n-grams, and a block of :data:`POOL_BLOCK` windows' n-grams while it streams
the pool; a retraining job the selected pool indices; the DsDm report every selection's table of the
pool. The bytes per item are the plan's estimates for those arrays.
"""

from __future__ import annotations

from proxyscale.data.ngrams import CLASSIFIER_NGRAMS, POOL_BLOCK


def select_host_bytes(n_pool: int, context_length: int) -> float:
    """Peak host bytes of one ``select`` job on a pool of ``n_pool`` windows of ``context_length + 1`` tokens."""
    ngrams = 2 * (context_length + 1) - 1  # hashed unigrams and bigrams of a window
    return 6 * 8.0 * n_pool + 36.0 * CLASSIFIER_NGRAMS + 24.0 * POOL_BLOCK * ngrams


def retrain_host_bytes(n_pool: int) -> float:
    """Host bytes of one ``selection_retrain`` job beyond its model: the selected pool indices."""
    return 8.0 * n_pool


def report_host_bytes(n_pool: int, selections: int) -> float:
    """Host bytes of the ``dsdm`` report: every selection's table of the pool."""
    return selections * 25.0 * n_pool
