"""Data-parallel training: each rank's share of a global batch, and the same tiny training run through
the workflow with one and with two torchrun processes (gloo on CPU) giving the same loss curve."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import run_snakemake, tiny_config, write_config
from proxyscale.io import save_text
from proxyscale.training.distributed import Group


def test_shares_cover_the_batch_and_divisors_make_the_average_the_global_mean():
    groups = [Group(rank, 2) for rank in range(2)]
    assert [g.share(5) for g in groups] == [slice(0, 2), slice(2, 5)]
    assert [g.loss_divisor(5) for g in groups] == [2.5, 2.5]
    losses = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    # DDP averages the ranks' gradients, so it averages their summed losses over their divisors
    averaged = np.mean([losses[g.share(5)].sum() / g.loss_divisor(5) for g in groups])
    assert averaged == pytest.approx(losses.mean())
    assert Group().share(7) == slice(0, 7) and Group().loss_divisor(7) == 7.0


def test_only_rank_zero_writes(tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    with pytest.raises(RuntimeError, match="only rank 0 writes"):
        save_text("x", tmp_path / "out.txt")
    assert not list(tmp_path.iterdir())


def _train(tmp_path, processes: int) -> tuple[pd.DataFrame, dict, str]:
    config = tiny_config()
    config["resources"] = {"train": {"threads": 2, "processes": processes}}
    tmp_path.mkdir()
    write_config(config, tmp_path)
    target = "results/checkpoints/mixture/ref.pt"
    result = run_snakemake(tmp_path, "--cores", "2", target, "results/train_logs/mixture/ref.parquet")
    assert result.returncode == 0, result.stderr[-3000:]
    curve = pd.read_parquet(tmp_path / "results/train_logs/mixture/ref.parquet")
    weights = torch.load(tmp_path / target, weights_only=False)["state_dict"]
    return curve, weights, (tmp_path / "results/logs/train/mixture/ref.log").read_text()


@pytest.mark.workflow
def test_two_processes_train_the_same_model_as_one(tmp_path):
    one, weights_one, _ = _train(tmp_path / "one", 1)
    two, weights_two, log = _train(tmp_path / "two", 2)
    assert "[rank 0]" in log  # the job really ran under torchrun
    assert len(one) == len(two) > 5
    gap = np.abs(one["loss"].to_numpy() - two["loss"].to_numpy()).max()
    print(f"max difference of the loss curves, 1 vs 2 processes: {gap:.2e} (losses ~{one['loss'].mean():.2f})")
    assert gap < 1e-4
    assert one["loss"].iloc[-1] < one["loss"].iloc[0] - 0.5  # it did learn, so agreement is not trivial
    drift = max((weights_one[k] - weights_two[k]).abs().max().item() for k in weights_one)
    print(f"max difference of the final weights: {drift:.2e}")
    assert drift < 5e-3  # Adam's normalised steps amplify rounding in near-zero gradients, but no further
    assert not list((tmp_path / "two/results").rglob("*.tmp*"))
