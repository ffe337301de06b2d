"""Examples read a batch at a time: what training, TRAK and selection jobs take rows from.

Both kinds answer ``len()``, ``take(rows)`` (the inputs and labels of those rows, as numpy arrays) and
``labels(rows)``, so a job only ever reads the rows it works on:

- :class:`Arrays`: inputs and labels held as arrays (images, a test set's target examples), in memory
  or memory-mapped.
- :class:`Windows`: language-model training windows, ``window`` consecutive tokens from each start
  offset in the concatenation of token shards (``.npy`` files, :mod:`proxyscale.data.prepare`). The
  tokens are read from the shard files with ``pread`` when a batch asks for them: no index of every
  window's positions, no copy of the windows, and no memory mapping, so a job's memory holds its
  batches, however large the shards. A batch's windows are read in order of their starts, and a run of
  windows that lie close together in one shard (at most a window apart) is one read, so a batch of
  windows cut side by side costs one system call, not one per window. A window that runs past the end
  of one shard continues into the next, as in the concatenated stream. Every position but the first is
  scored.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from proxyscale.artifacts import damaged, npy_layout


class Arrays:
    """Examples given as an inputs array and a labels array of the same length."""

    def __init__(self, inputs: np.ndarray, labels: np.ndarray):
        self.inputs, self.label_array = inputs, labels

    def __len__(self) -> int:
        return len(self.inputs)

    def take(self, rows) -> tuple[np.ndarray, np.ndarray]:
        rows = np.asarray(rows)
        return np.asarray(self.inputs[rows]), np.asarray(self.label_array[rows])

    def labels(self, rows) -> np.ndarray:
        return np.asarray(self.label_array[np.asarray(rows)])


class Windows:
    """``window``-token training windows at ``starts`` in the concatenated ``shards`` (module docstring)."""

    def __init__(self, shards: list[str | Path], starts: np.ndarray, window: int):
        self.paths = [Path(p) for p in shards]
        self.layouts = [npy_layout(p) for p in self.paths]  # (dtype, length, data offset)
        self.ends = np.cumsum([length for _, length, _ in self.layouts])
        self.starts, self.window = starts, window
        if len(starts) and int(np.max(starts)) + window > (self.ends[-1] if len(self.ends) else 0):
            raise damaged(self.paths[-1], f"windows reach past the {int(self.ends[-1]):,} tokens of the shards")
        self._fds: list[int] | None = None

    def __len__(self) -> int:
        return len(self.starts)

    def __getstate__(self):  # file descriptors do not cross processes
        return {**self.__dict__, "_fds": None}

    def _read(self, shard: int, offset: int, count: int) -> np.ndarray:
        if self._fds is None:
            self._fds = [os.open(p, os.O_RDONLY) for p in self.paths]
        dtype, _, data = self.layouts[shard]
        raw = os.pread(self._fds[shard], count * dtype.itemsize, data + offset * dtype.itemsize)
        if len(raw) != count * dtype.itemsize:
            raise damaged(self.paths[shard], f"cut off: {len(raw)} bytes where {count * dtype.itemsize} were expected")
        return np.frombuffer(raw, dtype=dtype)

    def _across(self, start: int) -> np.ndarray:
        """One window read piece by piece, shard by shard (a window that crosses a shard's end)."""
        out = np.empty(self.window, dtype=np.int64)
        pos, filled = start, 0
        while filled < self.window:
            shard = int(np.searchsorted(self.ends, pos, side="right"))
            begin = pos - (int(self.ends[shard - 1]) if shard else 0)
            count = min(self.window - filled, int(self.ends[shard]) - pos)
            out[filled : filled + count] = self._read(shard, begin, count)
            pos, filled = pos + count, filled + count
        return out

    def tokens(self, rows) -> np.ndarray:
        """The windows at ``rows``, (len(rows), window) int64, read in runs (module docstring)."""
        rows = np.asarray(rows)
        starts = np.asarray(self.starts[rows], dtype=np.int64)
        out = np.empty((len(rows), self.window), dtype=np.int64)
        order = np.argsort(starts, kind="stable")
        i = 0
        while i < len(order):
            first = int(starts[order[i]])
            shard = int(np.searchsorted(self.ends, first, side="right"))
            shard_end = int(self.ends[shard])
            if first + self.window > shard_end:
                out[order[i]] = self._across(first)
                i += 1
                continue
            stop, j = first + self.window, i + 1
            while j < len(order):
                nxt = int(starts[order[j]])
                if nxt > stop + self.window or nxt + self.window > shard_end:
                    break
                stop, j = max(stop, nxt + self.window), j + 1
            block = self._read(shard, first - (int(self.ends[shard - 1]) if shard else 0), stop - first)
            for k in order[i:j]:
                offset = int(starts[k]) - first
                out[k] = block[offset : offset + self.window]
            i = j
        return out

    def labels(self, rows) -> np.ndarray:
        """Every position of a window is scored but the first, which nothing predicts."""
        mask = np.ones((len(np.asarray(rows)), self.window), dtype=bool)
        mask[:, 0] = False
        return mask

    def take(self, rows) -> tuple[np.ndarray, np.ndarray]:
        return self.tokens(rows), self.labels(rows)

    def close(self) -> None:
        for fd in self._fds or []:
            os.close(fd)
        self._fds = None

    def __del__(self):
        self.close()
