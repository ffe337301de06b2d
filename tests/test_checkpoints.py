"""One checkpoint writer and reader for every model, with clear errors on damaged files."""

from __future__ import annotations

import pytest
import torch

from proxyscale.errors import DataError
from proxyscale.training.checkpoints import checkpoint_meta, read_checkpoint, save_checkpoint


def test_round_trip_keeps_specs_weights_and_meta(tmp_path):
    model = torch.nn.Linear(3, 2)
    save_checkpoint(tmp_path / "m.pt", model, {"params": 8}, task={"setting": "x"})
    blob = read_checkpoint(tmp_path / "m.pt", needs=("task",))
    assert blob["task"] == {"setting": "x"} and checkpoint_meta(tmp_path / "m.pt") == {"params": 8}
    assert torch.equal(blob["state_dict"]["weight"], model.weight)
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temporary file left behind


def test_truncated_file_is_one_line_naming_it(tmp_path):
    save_checkpoint(tmp_path / "m.pt", torch.nn.Linear(30, 20), {})
    data = (tmp_path / "m.pt").read_bytes()
    (tmp_path / "m.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"m\.pt: damaged or incomplete"):
        read_checkpoint(tmp_path / "m.pt")


def test_checkpoint_of_another_kind_is_refused(tmp_path):
    save_checkpoint(tmp_path / "m.pt", torch.nn.Linear(3, 2), {})
    with pytest.raises(DataError, match="lacks model_config"):
        read_checkpoint(tmp_path / "m.pt", needs=("model_config",))
