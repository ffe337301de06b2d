"""Atomic writers: a file appears whole under its final name, with ordinary permissions, or not at all."""

from __future__ import annotations

import stat

import pytest

from proxyscale.io import atomic_path, save_text


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
