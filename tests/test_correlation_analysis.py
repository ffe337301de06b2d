"""Reading the correlation experiment's inputs, as its report job does."""

from __future__ import annotations

import pandas as pd
import torch

from proxyscale.correlation.analysis import largest_proxy, read_runs, read_tables
from proxyscale.training.checkpoints import save_checkpoint


def test_tables_are_tagged_with_their_keys(tmp_path):
    paths = [tmp_path / "0.parquet", tmp_path / "1.parquet"]
    for i, path in enumerate(paths):
        pd.DataFrame({"loss": [float(i), float(i) + 0.5]}).to_parquet(path)
    table = read_tables([("books", "s"), ("web", "ref")], paths, ("dist", "size"))
    assert table.to_dict("list") == {"loss": [0.0, 0.5, 1.0, 1.5], "dist": ["books"] * 2 + ["web"] * 2,
                                     "size": ["s"] * 2 + ["ref"] * 2}  # fmt: skip


def test_runs_are_the_checkpoints_summaries(tmp_path):
    for name, params in (("a", 10), ("b", 20)):
        save_checkpoint(tmp_path / f"{name}.pt", torch.nn.Linear(1, 1), {"size": name, "params": params})
    runs = read_runs([tmp_path / "a.pt", tmp_path / "b.pt"])
    assert runs.to_dict("list") == {"size": ["a", "b"], "params": [10, 20]}


def test_largest_proxy_is_the_first_non_reference_size_by_flops():
    compute = pd.DataFrame({"size": ["ref", "l", "s"], "flops": [9.0, 4.0, 1.0]})
    assert largest_proxy(compute, "ref") == "l"
