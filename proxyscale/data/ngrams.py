"""Hashed unigram and bigram counts of token sequences: the features of DSIR and the classifier
(:mod:`proxyscale.selection.methods`), and what bounds their memory (:data:`POOL_BLOCK`,
:data:`CLASSIFIER_NGRAMS`, which the plan also reads). Counts are sparse: a window of T tokens has at
most 2T - 1 n-grams whatever the number of buckets.
"""

from __future__ import annotations

import numpy as np

POOL_BLOCK = 4096  # pool windows whose n-gram counts are held at once
CLASSIFIER_NGRAMS = 2**25  # n-grams of the pool sample the classifier is fit on (all of a smaller pool)


def ngram_ids(tokens: np.ndarray, buckets: int) -> np.ndarray:
    """The hashed unigram and bigram bucket of every position of token sequences of equal length
    (rows, length) -> (rows, 2 length - 1)."""
    seq = np.atleast_2d(np.asarray(tokens, dtype=np.int64))
    uni = (seq * 1_000_003) % buckets
    bi = (seq[:, :-1] * 1_000_003 + seq[:, 1:] * 998_244_353 + 7) % buckets
    return np.concatenate([uni, bi], axis=1)


def hashed_ngrams(sequences: list[np.ndarray], buckets: int):
    """Counts of hashed unigrams and bigrams of token sequences, a sparse (n, buckets) CSR matrix."""
    from scipy import sparse

    ids = [ngram_ids(seq, buckets)[0] for seq in sequences]
    indptr = np.concatenate([[0], np.cumsum([len(i) for i in ids])])
    data = np.ones(int(indptr[-1]), dtype=np.float32)
    flat = np.concatenate(ids) if ids else np.empty(0, np.int64)
    counts = sparse.csr_matrix((data, flat, indptr), shape=(len(ids), buckets))
    counts.sum_duplicates()
    return counts


def pool_blocks(pool, buckets: int, block_rows: int = POOL_BLOCK):
    """(rows, sparse n-gram counts) of the pool's windows, ``block_rows`` at a time: the selectors stream
    the pool, so their memory holds one block whatever its size."""
    for start in range(0, len(pool), block_rows):
        rows = np.arange(start, min(len(pool), start + block_rows))
        yield rows, hashed_ngrams(list(pool.tokens(rows)), buckets)
