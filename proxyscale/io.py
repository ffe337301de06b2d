"""Atomic writers for artifacts: a file appears complete under its final name or not at all.

Every artifact is written to a temporary file beside its destination and renamed into place, so a
job killed mid-write leaves no half-written parquet, checkpoint or figure that a later run could
mistake for a finished one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

_UMASK = os.umask(0)
os.umask(_UMASK)  # read once: the permissions a plain open() would give a new file


def _writable(path: str | Path) -> Path:
    """``path``, with its parent made, once this process may write artifacts (rank 0 of a group)."""
    path = Path(path)
    if int(os.environ.get("RANK", "0")) != 0:
        raise RuntimeError(f"{path}: rank {os.environ['RANK']} of a training group tried to write; only rank 0 writes")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` if the block succeeds, with the
    permissions a plain ``open()`` would have given it (the temporary file is private until then).

    Only rank 0 of a data-parallel training group (torchrun sets ``RANK``) writes artifacts."""
    path = _writable(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        if os.path.isfile(tmp):
            os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary directory next to ``path``; if the block succeeds, it replaces ``path`` (a
    directory artifact: whole, or not there at all)."""
    path = _writable(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_UMASK)
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def save_parquet(df: pd.DataFrame, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)


_NPY_HEADER_BYTES = 128  # magic, version, length and a padded header dict: room for any 1-d or 2-d shape


def _npy_header_bytes(dtype, shape: tuple[int, ...]) -> bytes:
    """A version 1.0 ``.npy`` header for a C-ordered array of ``shape``, padded to :data:`_NPY_HEADER_BYTES`
    (so a header written before the length is known can be rewritten in place)."""
    text = f"{{'descr': '{np.dtype(dtype).str}', 'fortran_order': False, 'shape': {tuple(int(n) for n in shape)}, }}"
    body = text.ljust(_NPY_HEADER_BYTES - 10 - 1) + "\n"
    return b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body.encode("latin1")


@contextlib.contextmanager
def npy_writer(path: str | Path, dtype, row_shape: tuple[int, ...] = ()) -> Iterator[Callable[[np.ndarray], None]]:
    """Write a ``.npy`` of rows of ``row_shape`` a piece at a time: yields ``append(rows)``; the header gets
    the final length when the block ends. Memory holds one piece; the file appears whole or not at all
    (read it back with ``np.load(path, mmap_mode="r")`` or :class:`proxyscale.artifacts.NpyRows`)."""
    dtype = np.dtype(dtype)
    length = 0
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(_npy_header_bytes(dtype, (0, *row_shape)))

        def append(rows: np.ndarray) -> None:
            nonlocal length
            rows = np.ascontiguousarray(rows, dtype=dtype)
            if rows.shape[1:] != tuple(row_shape):
                raise ValueError(f"{path}: rows of shape {rows.shape[1:]}, not {tuple(row_shape)}")
            f.write(rows.tobytes())
            length += len(rows)

        yield append
        f.seek(0)
        f.write(_npy_header_bytes(dtype, (length, *row_shape)))


class RowFile:
    """A ``.npy`` of a fixed shape, written a block of rows at a time in place (``pwrite``): the file is
    made at its full size (sparse on disk until written), so a job that resumes writes where it stopped.
    Unlike the writers above it is not atomic: it is for work files that a finished job publishes whole."""

    def __init__(self, path: str | Path, shape: tuple[int, ...], dtype):
        self.path, self.shape, self.dtype = Path(path), shape, np.dtype(dtype)
        header = _npy_header_bytes(self.dtype, shape)
        self.offset = len(header)
        self.row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * self.dtype.itemsize
        if not self.path.exists():
            with open(_writable(self.path), "wb") as f:
                f.write(header)
                f.truncate(self.offset + shape[0] * self.row_bytes)

    def write(self, start: int, rows: np.ndarray) -> None:
        """Rows ``start``, ``start + 1``, ... of the file become ``rows``."""
        data = np.ascontiguousarray(rows, dtype=self.dtype).tobytes()
        fd = os.open(self.path, os.O_WRONLY)
        try:
            os.pwrite(fd, data, self.offset + start * self.row_bytes)
        finally:
            os.close(fd)


@contextlib.contextmanager
def parquet_writer(path: str | Path, schema: dict[str, str]) -> Iterator[Callable[[dict], None]]:
    """Write a parquet file a row group at a time: yields ``write(columns)`` for dicts of equal-length
    lists; ``schema`` maps column names to Arrow type names. Atomic like the other writers."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow = pa.schema([(name, pa.type_for_alias(kind)) for name, kind in schema.items()])
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, arrow) as writer:
        writer.write_table(arrow.empty_table())  # a valid file even when nothing is written
        yield lambda columns: writer.write_table(pa.table(columns, schema=arrow))


def save_npz(path: str | Path, **arrays) -> None:
    """Arrays (and scalars) under their keyword names in one uncompressed ``.npz``."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def save_text(text: str, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def save_json(data: dict, path: str | Path) -> None:
    """A JSON object (indented, keys sorted) written atomically."""
    save_text(json.dumps(data, indent=1, sort_keys=True, default=str) + "\n", path)
