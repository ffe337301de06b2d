"""Reading the workflow's own artifacts back, with one clear line when one was damaged after it was
written (cut off by a full disk, edited by hand, another file copied over it).

Writers are atomic (:mod:`proxyscale.io`), so a damaged artifact is never the workflow's own half-written
file, and Snakemake, seeing the file present, will not remake it by itself: the message names the file,
the rule that makes it (:mod:`proxyscale.layout`) and says to delete it so the next run rebuilds it.
"""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path

import numpy as np

from proxyscale.errors import DataError, reason
from proxyscale.layout import maker_of

READ_ERRORS = (OSError, EOFError, ValueError, RuntimeError, KeyError, pickle.UnpicklingError, zipfile.BadZipFile)
"""What numpy, pyarrow, torch and json raise on a cut-off or foreign file (pyarrow's ArrowInvalid is a
ValueError; torch's zip reader raises RuntimeError)."""


def damaged(path: str | Path, reason: str) -> DataError:
    """The one-line error for an artifact that cannot be read back."""
    maker = maker_of(path)
    made = f"it is made by rule {maker}" if maker else "it was made by an earlier job"
    return DataError(f"{path}: damaged or incomplete ({reason}); {made}: delete it and run again to rebuild it")


def _present(path: str | Path, magic: bytes = b"", kind: str = "") -> Path:
    """``path``, once it exists and (for a ``magic`` prefix) starts like a ``kind`` file."""
    path = Path(path)
    if not path.exists():
        maker = maker_of(path)
        raise DataError(f"{path}: no such file" + (f" (made by rule {maker})" if maker else ""))
    if magic:
        with open(path, "rb") as f:
            head = f.read(len(magic))
        if head != magic:
            raise damaged(path, f"not a {kind} file: {'empty' if not head else f'starts with {head!r}'}")
    return path


def load_parquet(path: str | Path, columns: list[str] | None = None):
    """A parquet table as a pandas DataFrame (``columns``: only those)."""
    import pandas as pd  # not every job needs pandas

    try:
        return pd.read_parquet(_present(path, b"PAR1", "parquet"), columns=columns)
    except READ_ERRORS as exc:
        raise damaged(path, reason(exc)) from None


def load_npy(path: str | Path, mmap: bool = False) -> np.ndarray:
    """A ``.npy`` array, memory-mapped read-only when ``mmap``."""
    try:
        return np.load(_present(path, b"\x93NUMPY", ".npy"), mmap_mode="r" if mmap else None, allow_pickle=False)
    except READ_ERRORS as exc:
        raise damaged(path, reason(exc)) from None


def read_npy_header(path: str | Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """The shape, dtype and data offset of a C-ordered ``.npy`` file, from its header alone (the data is
    not read, so a file of any size costs nothing); a file too short for its shape is damaged."""
    path = _present(path, b"\x93NUMPY", ".npy")
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read(f)
            offset = f.tell()
    except READ_ERRORS as exc:
        raise damaged(path, reason(exc)) from None
    if fortran:
        raise damaged(path, "a Fortran-ordered array, not one of this workflow's")
    size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if path.stat().st_size < offset + size:
        raise damaged(path, f"cut off: {path.stat().st_size:,} bytes for an array of shape {shape} of {dtype}")
    return tuple(int(n) for n in shape), dtype, offset


def npy_layout(path: str | Path) -> tuple[np.dtype, int, int]:
    """The dtype, length and data offset of a 1-d ``.npy`` file (a token stream), from its header alone."""
    shape, dtype, offset = read_npy_header(path)
    if len(shape) != 1:
        raise damaged(path, f"a token stream is 1-d, this array has shape {shape}")
    return dtype, shape[0], offset


class NpyRows:
    """Rows of a ``.npy`` file read a block at a time with ``pread``: ``rows(start, stop)`` is a fresh array,
    so a job streaming through a file of any size holds one block (a memory map would keep every page it
    touched resident)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.shape, self.dtype, self.offset = read_npy_header(path)
        self.row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def rows(self, start: int, stop: int) -> np.ndarray:
        stop = min(stop, len(self))
        out = np.empty((max(0, stop - start), *self.shape[1:]), dtype=self.dtype)
        with open(self.path, "rb") as f:
            f.seek(self.offset + start * self.row_bytes)
            if f.readinto(memoryview(out).cast("B")) != out.nbytes:
                raise damaged(self.path, f"cut off before row {stop:,}")
        return out

    def rows_within(self, nbytes: int) -> int:
        """How many rows fit in ``nbytes`` (at least one): the block size of a read bounded in memory."""
        return max(1, nbytes // max(1, self.row_bytes))

    def blocks(self, rows: int):
        """(start, block) over the whole file, ``rows`` rows at a time."""
        for start in range(0, len(self), rows):
            yield start, self.rows(start, start + rows)


def load_npz(path: str | Path, keys: list[str] | None = None) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` (``keys``: only those), read now, so a cut-off member fails here, not later."""
    try:
        with np.load(_present(path, b"PK", ".npz"), allow_pickle=False) as z:
            return {key: z[key] for key in (z.files if keys is None else keys)}
    except READ_ERRORS as exc:
        raise damaged(path, reason(exc)) from None


def load_json(path: str | Path) -> dict:
    """A JSON object."""
    try:
        value = json.loads(_present(path).read_text())
    except (*READ_ERRORS, UnicodeDecodeError) as exc:
        raise damaged(path, reason(exc)) from None
    if not isinstance(value, dict):
        raise damaged(path, f"a JSON {type(value).__name__}, not an object")
    return value


def load_torch(path: str | Path, device="cpu", mmap: bool = False) -> dict:
    """A ``torch.save`` dict of tensors and plain values (``weights_only``: no code is run); with ``mmap``
    its tensors are read from the file as they are used (on the CPU), not into the process's memory."""
    import torch

    try:
        value = torch.load(_present(path, b"PK", "torch.save"), map_location=device, weights_only=True, mmap=mmap)
    except READ_ERRORS as exc:
        raise damaged(path, reason(exc)) from None
    if not isinstance(value, dict):
        raise damaged(path, f"holds a {type(value).__name__}, not a dict")
    return value
