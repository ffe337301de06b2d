"""A model with fewer parameters than trak.proj_dim (the default attribution's h1: an MLP of width 1 on 14x14
digits, 217 parameters, k = 256): TRAK keeps its exact per-example gradients, whatever trak.projector says, and
scores it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import MNIST
from proxyscale.attribution import report
from proxyscale.attribution.analysis import trak_ranks
from proxyscale.attribution.dataset import vision_dataset
from proxyscale.datamodels import store
from proxyscale.datamodels.examples import Arrays
from proxyscale.datamodels.tasks import make_task
from proxyscale.training.fit import fit
from proxyscale.training.recipe import Recipe

CPU = torch.device("cpu")
K = 256


@pytest.fixture(scope="module")
def h1():
    arrays, spec = vision_dataset({**MNIST, "family": "mlp"}, n_train=400, n_targets=6, seed=0)
    task = make_task(spec)
    train = Arrays(arrays["train_inputs"], arrays["train_labels"])
    recipe = Recipe(batch_size=64, lr=0.005, weight_decay=0.0005, warmup_frac=0.1, min_lr_frac=0.0)  # the default's
    model, _ = fit(task, {"width": 1}, train, np.arange(len(train)), recipe, 15, 0, CPU)
    return task, model, train, Arrays(arrays["target_inputs"], arrays["target_labels"])


def _gradients(task, model, examples, rows) -> np.ndarray:
    """Each example's gradient of its margin, one backward pass per example (no vmap, no projection)."""
    out = []
    for i in rows:
        margin = task.outputs(model, task.to_batch(*examples.take(np.array([i])), CPU)).sum()
        out.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(margin, list(model.parameters()))]))
    return torch.stack(out).numpy()


@pytest.mark.parametrize("projector", ["sjlt", "dense"])
def test_a_model_smaller_than_k_keeps_its_exact_gradients(h1, tmp_path, projector):
    task, model, train, _ = h1
    assert sum(p.numel() for p in model.parameters()) == 217
    summary = store.featurize(model, task, train, 100, tmp_path / "w", K, CPU, projector=projector, fingerprint="a")
    assert (summary["proj_dim"], summary["grad_dim"], summary["projector"]) == (217, 217, "ExactGradients")
    rows = [0, 7, 399]
    np.testing.assert_allclose(
        np.load(tmp_path / "w/grads.npy")[rows], _gradients(task, model, train, rows), rtol=1e-4, atol=1e-6
    )


def test_span_inverse_is_the_pseudo_inverse_on_the_resolved_span():
    """Phi^T Phi of rank 3 in 5 dimensions, one eigenvalue below float32's resolution: the inverse on the
    3-dimensional span, and that span's size."""
    rng = np.random.default_rng(0)
    basis, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    values = np.array([4.0, 1.0, 0.25, 1e-9, 0.0])
    xtx = (basis * values) @ basis.T
    inverse, rank = store.span_inverse(torch.from_numpy(xtx))
    expected = (basis[:, :3] / values[:3]) @ basis[:, :3].T
    assert rank == 3
    np.testing.assert_allclose(inverse.numpy(), expected, atol=1e-9)


def _bordered_digits(n: int, seed: int) -> Arrays:
    """Random images whose 3-pixel border is blank in every one (as MNIST's mostly is) and random labels: the
    weights of border pixels all get the same gradient, so the exact gradients span fewer dimensions than the
    parameters, by exactly that much (no direction is merely small)."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 1, 14, 14), np.uint8)
    images[:, :, 3:-3, 3:-3] = rng.integers(0, 256, (n, 1, 8, 8))
    return Arrays(images, rng.integers(0, 10, n))


def test_scores_of_a_model_smaller_than_k_are_least_squares_weights_of_its_exact_gradients(h1, tmp_path):
    """TRAK's weights of the training examples for a target, Phi (Phi^T Phi)^+ phi, express the target's
    gradient through the training gradients: Phi^T times them gives it back (times traker's normalisation
    constant), though Phi^T Phi of the exact gradients is singular."""
    task, model, _, _ = h1
    train, targets = _bordered_digits(300, 1), _bordered_digits(6, 2)
    store.featurize(model, task, train, 100, tmp_path / "w", K, CPU, fingerprint="a")
    scoring = store.score(model, task, targets, 6, [tmp_path / "w"], tmp_path / "s.npy", CPU)
    phi, weights = np.load(tmp_path / "w/grads.npy").astype(np.float64), np.load(tmp_path / "s.npy")
    values = np.linalg.eigvalsh(phi.T @ phi)
    span = int((values > 1e-10 * values.max()).sum())  # the rest are float32 rounding, below 1e-15 here
    assert span < 217 and scoring["rank"] == span  # singular: no inverse exists, the span is inverted
    rebuilt = phi.T @ weights  # (217, targets)
    wanted = _gradients(task, model, targets, range(len(targets))).T
    scale = (rebuilt * wanted).sum() / (wanted * wanted).sum()  # traker's normalisation of the inverse
    assert scale > 0
    np.testing.assert_allclose(rebuilt / scale, wanted, atol=1e-4 * np.abs(wanted).max())


def test_the_lds_report_names_the_dimensions_each_size_used_and_why():
    stores = {"h1": [{"proj_dim": 217, "rank": 150}, {"proj_dim": 217, "rank": 148}], "h8": [{"proj_dim": 256}]}
    ranks = trak_ranks(stores)  # h8's store predates the rank: it inverted all 256
    assert ranks == {"h1": 148, "h8": 256}
    compute = pd.DataFrame({"size": ["h8", "h1"], "params": [1666, 217], "proj_dim": [256, 217]})
    compute["trak_rank"] = compute["size"].map(ranks)
    dims = compute.set_index("size")[["proj_dim", "trak_rank"]]
    assert [report._dims(dims.loc[s], n) for s, n in zip(compute["size"], compute["params"])] == [
        "256",
        "148 of 217 (exact)",
    ]
    (note,) = report.projection_notes(compute, K)
    assert note.startswith(
        "- **h1**: 217 parameters, not more than trak.proj_dim 256, so TRAK uses its exact gradients (217 "
        "dimensions: min(k, parameters))"
    )
    assert "They span 148 of them" in note


def test_the_report_says_one_checkpoint_in_the_singular():
    """A smoke overlay trains one checkpoint per size: "1 checkpoint (seeds)", not "1 checkpoints"."""
    assert [report._count(n, "checkpoint") for n in (1, 8)] == ["1 checkpoint", "8 checkpoints"]
