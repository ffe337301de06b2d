"""Datamodel matrices from per-checkpoint TRAK scores, and how datamodels of different sizes agree.

A datamodel matrix has shape (n_train, n_targets): entry (i, j) is the weight of training example i
for target j. Averaging over the M checkpoints of a size gives the paper's equation 17; the paper
drops the out-to-loss term Q, which ``q_term`` puts back (each training example's weights multiplied
by its Q averaged over checkpoints, as traker's ``finalize_scores`` does).

Every computation here runs a block of training rows at a time (:class:`CheckpointScores`), so the
n_train dimension (14.8M windows, 80M for selection at the paper's scale) never has to fit in memory:
the datamodel is written a block at a time, top-k sets are merged block by block
(:class:`TopK`), and rank correlations between sizes are computed on a seeded sample of at most
:data:`RANK_SAMPLE` rows (all rows when there are fewer), a Spearman estimate whose standard error is
about 1 / sqrt(sample).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from proxyscale.artifacts import NpyRows
from proxyscale.io import npy_writer

BLOCK_BYTES = 64 * 2**20  # score values read at once, over all checkpoints of a size
RANK_SAMPLE = 200_000


def datamodel(scores: list[np.ndarray], qs: list[np.ndarray], q_term: bool) -> np.ndarray:
    """Average of the checkpoints' raw scores, times the averaged Q when ``q_term``."""
    if not scores:
        raise ValueError("a datamodel needs at least one checkpoint's scores")
    tau = np.mean(np.stack(scores), axis=0)
    if q_term:
        tau = tau * np.mean(np.stack(qs), axis=0)[:, None]
    return tau.astype(np.float32)


class CheckpointScores:
    """The score files of a size's checkpoints (each (n_train, columns), :func:`proxyscale.datamodels.store.score`)
    and their Q vectors, read a block of training rows at a time."""

    def __init__(self, paths: list, qs: list[np.ndarray]):
        self.files = [NpyRows(p) for p in paths]
        self.qs = qs
        shapes = {f.shape for f in self.files}
        if len(shapes) != 1 or any(len(q) != self.files[0].shape[0] for q in qs):
            raise ValueError(f"checkpoint scores of different shapes: {sorted(shapes)}")
        self.n, self.columns = self.files[0].shape

    def blocks(self) -> Iterator[tuple[slice, list[np.ndarray], list[np.ndarray]]]:
        """(rows, each checkpoint's scores, each checkpoint's Q) for consecutive blocks of rows."""
        rows = max(1, BLOCK_BYTES // (4 * self.columns * len(self.files)))
        for start in range(0, self.n, rows):
            part = slice(start, min(self.n, start + rows))
            yield part, [f.rows(part.start, part.stop) for f in self.files], [np.asarray(q[part]) for q in self.qs]


def write_datamodel(scores: CheckpointScores, q_term: bool, path) -> None:
    """The datamodel (eq. 17) of a size's checkpoints into the ``.npy`` at ``path``, a block at a time."""
    with npy_writer(path, np.float32, (scores.columns,)) as append:
        for _, s, q in scores.blocks():
            append(datamodel(s, q, q_term))


def datamodel_column(path, column: int) -> np.ndarray:
    """One column of a datamodel ``.npy`` (the selection's: one column per target task, the mean weight
    over its target examples), read a block of rows at a time."""
    tau = NpyRows(path)
    return (
        np.concatenate([b[:, column] for _, b in tau.blocks(tau.rows_within(BLOCK_BYTES))]) if len(tau) else np.empty(0)
    )


class TopK:
    """Each column's ``k`` largest (or smallest) values' row indices, merged block by block; ties go to
    the lower row, as a stable sort over all rows would give."""

    def __init__(self, k: int, columns: int, largest: bool = True):
        self.k, self.sign = k, -1.0 if largest else 1.0
        self.keys = np.empty((0, columns))  # sign x value of the kept rows, per column
        self.rows = np.empty((0, columns), dtype=np.int64)

    def add(self, start: int, block: np.ndarray) -> None:
        keys = np.concatenate([self.keys, self.sign * block.astype(np.float64)])
        rows = np.concatenate([self.rows, np.broadcast_to(np.arange(start, start + len(block))[:, None], block.shape)])
        order = np.lexsort((rows, keys), axis=0)[: self.k]
        self.keys, self.rows = np.take_along_axis(keys, order, 0), np.take_along_axis(rows, order, 0)

    def indices(self) -> np.ndarray:
        """(k, columns) row indices, strongest first."""
        return self.rows


def top_k(tau: np.ndarray, k: int, largest: bool = True) -> np.ndarray:
    """Indices (k, n_targets) of each target's k largest (or smallest) weights, strongest first."""
    top = TopK(k, tau.shape[1], largest)
    top.add(0, tau)
    return top.indices()


def overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per column, the fraction of the row indices two (k, columns) top-k sets share."""
    return np.array([len(np.intersect1d(a[:, j], b[:, j])) / len(a) for j in range(a.shape[1])])


def sample_rows(n: int, seed: int = 0, limit: int = RANK_SAMPLE) -> np.ndarray:
    """Sorted rows of a seeded sample of at most ``limit`` of ``n`` (all of them when ``n <= limit``)."""
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def rank_correlation(tau_a: np.ndarray, tau_b: np.ndarray) -> np.ndarray:
    """Per target, the Spearman correlation of two datamodels' weights over the (sampled) training rows."""
    from scipy import stats as sps

    ra = sps.rankdata(tau_a, axis=0)
    rb = sps.rankdata(tau_b, axis=0)
    ra -= ra.mean(0)
    rb -= rb.mean(0)
    return (ra * rb).sum(0) / np.sqrt((ra**2).sum(0) * (rb**2).sum(0))
