"""Retraining the reference on a selection, and a selection as a token stream."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from conftest import windows_dataset
from proxyscale.datamodels.examples import Arrays
from proxyscale.datamodels.tasks import LMTask, token_metrics
from proxyscale.selection.retrain import retrain, write_selected_stream
from proxyscale.training.recipe import Recipe

CPU = torch.device("cpu")
SIZE = {"d_model": 8, "n_layers": 1, "n_heads": 2}


def _arrays(rng):
    pool = rng.integers(0, 20, (30, 9))
    mask = np.ones_like(pool, dtype=bool)
    mask[:, 0] = False
    holdout = rng.integers(0, 20, (6, 9))
    holdout_mask = np.zeros_like(holdout, dtype=bool)
    holdout_mask[:, 5:8] = True
    return {
        "train_inputs": pool,
        "train_labels": mask,
        "holdout_inputs": holdout,
        "holdout_labels": holdout_mask,
        "holdout_task": np.array([0, 0, 0, 1, 1, 1]),
        "holdout_origin": np.array([5, 6, 7, 1, 2, 3]),
    }


def test_token_metrics_are_the_per_example_continuation_loss_and_argmax_hits():
    task = LMTask(vocab_size=20, context_length=8)
    torch.manual_seed(0)
    model = task.make_model(SIZE).eval()
    arrays = _arrays(np.random.default_rng(0))
    x, m = arrays["holdout_inputs"], arrays["holdout_labels"]
    loss, acc = token_metrics(task, model, Arrays(x, m), 4, CPU)
    with torch.no_grad():
        logits = model(torch.from_numpy(x[:1, :-1]))[0]
    positions = np.flatnonzero(m[0, 1:])  # scored next-token positions
    expected = F.cross_entropy(logits[positions], torch.from_numpy(x[0, 1:][positions])).item()
    hits = (logits[positions].argmax(-1).numpy() == x[0, 1:][positions]).mean()
    assert np.isclose(loss[0], expected, atol=1e-5) and np.isclose(acc[0], hits)
    assert loss.shape == acc.shape == (6,)


def test_retrain_scores_every_holdout_example_with_every_seed(tmp_path):
    data = windows_dataset(tmp_path, _arrays(np.random.default_rng(1)), targets=["squad", "lambada"])
    recipe = Recipe(batch_size=5, lr=0.01)
    frame = retrain(data, {**SIZE, "batch_size": 5}, recipe, 1, np.arange(10), [0, 1], 4, CPU)
    assert len(frame) == 12 and frame["seed"].tolist() == [0] * 6 + [1] * 6
    assert frame["holdout_task"].tolist()[:6] == ["squad"] * 3 + ["lambada"] * 3
    assert (frame["examples"] == 10).all() and (frame["train_flops"] > 0).all()
    again = retrain(data, {**SIZE, "batch_size": 5}, recipe, 1, np.arange(10), [0, 1], 4, CPU)
    assert np.allclose(again["loss"], frame["loss"])  # seeded


def test_selected_stream_concatenates_the_selected_windows_in_pool_order(tmp_path):
    data = windows_dataset(tmp_path, {"train_inputs": np.arange(12).reshape(4, 3)})
    tokens = write_selected_stream(data, np.array([2, 0, 3]), tmp_path / "s.npy", chunk=2)
    stream = np.load(tmp_path / "s.npy")
    assert tokens == 9 and stream.dtype == np.uint16 and stream.tolist() == [0, 1, 2, 6, 7, 8, 9, 10, 11]
