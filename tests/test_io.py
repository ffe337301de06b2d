"""Atomic writers: a file appears whole under its final name, with ordinary permissions, or not at all."""

from __future__ import annotations

import stat

import numpy as np
import pytest

from proxyscale.io import RowFile, atomic_path, npy_writer, save_text


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "out.txt") as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert list(tmp_path.iterdir()) == []


def test_a_written_file_gets_the_permissions_a_plain_open_gives(tmp_path):
    """Not the temporary file's private 0600: results on a shared cluster disk stay readable to the group."""
    save_text("done", tmp_path / "out.txt")
    with open(tmp_path / "plain.txt", "w") as f:
        f.write("done")
    assert stat.S_IMODE((tmp_path / "out.txt").stat().st_mode) == stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode)


def test_a_row_file_is_a_full_size_npy_written_in_place_and_reopened_where_it_stopped(tmp_path):
    path = tmp_path / "grads.npy"
    rows = RowFile(path, (5, 3), np.float32)
    assert np.load(path).shape == (5, 3) and not np.load(path).any()  # made whole, zeros until written
    rows.write(1, np.ones((2, 3)))
    again = RowFile(path, (5, 3), np.float32)  # a resumed job: nothing written is lost
    again.write(4, np.full((1, 3), 7.0))
    assert np.load(path).tolist() == [[0] * 3, [1] * 3, [1] * 3, [0] * 3, [7] * 3]
    assert path.stat().st_size == again.offset + 5 * 3 * 4


def test_the_npy_writer_and_the_row_file_write_the_same_file(tmp_path):
    values = np.arange(12, dtype=np.float32).reshape(4, 3)
    with npy_writer(tmp_path / "a.npy", np.float32, (3,)) as append:
        append(values[:3])
        append(values[3:])
    RowFile(tmp_path / "b.npy", (4, 3), np.float32).write(0, values)
    assert (tmp_path / "a.npy").read_bytes() == (tmp_path / "b.npy").read_bytes()
