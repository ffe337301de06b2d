"""TRAK stores: one per checkpoint, resumable after an interrupted job, scored read-only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import MNIST
from proxyscale.attribution.dataset import vision_dataset
from proxyscale.datamodels import store
from proxyscale.datamodels.cost import trak_flops
from proxyscale.datamodels.examples import Arrays
from proxyscale.datamodels.projectors import effective_proj_dim
from proxyscale.datamodels.tasks import batches, make_task
from proxyscale.errors import ConfigError, DataError
from proxyscale.training.fit import fit
from proxyscale.training.recipe import Recipe

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def trained():
    arrays, spec = vision_dataset(MNIST, n_train=120, n_targets=10, seed=0)
    task = make_task(spec)
    x, y = arrays["train_inputs"], arrays["train_labels"]
    model, _ = fit(task, {"width": 2}, Arrays(x, y), np.arange(len(x)), Recipe(batch_size=20, lr=0.01), 2, 0, CPU)
    return arrays, task, model


def _featurize(trained, store_dir, work, on_batch=None, projector="sjlt"):
    arrays, task, model = trained
    x, y = arrays["train_inputs"], arrays["train_labels"]
    return store.featurize(
        model,
        task.modelout,
        lambda: batches(task, Arrays(x, y), np.arange(len(x)), 20, CPU),
        len(x),
        store_dir,
        work,
        32,
        CPU,
        projector=projector,
        fingerprint="ckpt-a",
        on_batch=on_batch,
    )


class Interrupted(Exception):
    pass


def test_interrupted_featurize_resumes_where_it_stopped(trained, tmp_path):
    def die_after_two(computed):
        if computed == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        _featurize(trained, tmp_path / "store", tmp_path / "work", die_after_two)
    assert not (tmp_path / "store").exists() and (tmp_path / "work").is_dir()

    resumed = _featurize(trained, tmp_path / "store", tmp_path / "work")
    assert resumed["resumed"] and resumed["batches"] == 6 and resumed["batches_computed"] == 4
    assert not (tmp_path / "work").exists()

    clean = _featurize(trained, tmp_path / "clean", tmp_path / "work-clean")
    assert not clean["resumed"] and clean["batches_computed"] == 6
    a, qa = store.load_features(tmp_path / "store")
    b, qb = store.load_features(tmp_path / "clean")
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(qa, qb, rtol=1e-5)


def test_work_dir_of_another_checkpoint_is_discarded(trained, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "proxyscale.fingerprint").write_text("ckpt-b")
    (work / "stale").write_text("x")
    summary = _featurize(trained, tmp_path / "store", work)
    assert not summary["resumed"] and summary["batches_computed"] == 6
    assert not (tmp_path / "store" / "stale").exists()


def test_scores_have_the_datamodel_shape_and_leave_the_store_unchanged(trained, tmp_path):
    arrays, task, model = trained
    _featurize(trained, tmp_path / "store", tmp_path / "work")
    before = sorted((p.name, p.stat().st_mtime_ns) for p in (tmp_path / "store").rglob("*"))
    xt, yt = arrays["target_inputs"], arrays["target_labels"]
    scores, q = store.score(
        model, task.modelout, lambda: batches(task, Arrays(xt, yt), np.arange(10), 5, CPU), 10, tmp_path / "store", CPU
    )
    assert scores.shape == (120, 10) and q.shape == (120,)
    assert np.isfinite(scores).all() and ((q > 0) & (q < 1)).all()  # Q = 1 - p of the true class
    assert sorted((p.name, p.stat().st_mtime_ns) for p in (tmp_path / "store").rglob("*")) == before


def test_projection_never_exceeds_the_parameter_count(trained):
    _, _, model = trained
    n = sum(p.numel() for p in model.parameters())
    assert effective_proj_dim(model, 10**6) == n and effective_proj_dim(model, 8) == 8


def test_unfinished_store_is_refused(tmp_path):
    with pytest.raises(Exception, match="not a finished proxyscale TRAK store"):
        store.store_summary(tmp_path)


@pytest.mark.parametrize("params, published", [(125e6, 4.30e20), (760e6, 2.62e21)])
def test_trak_cost_model_reproduces_the_papers_table_9(params, published):
    """Appendix A.3.2: C_attrib of MPT-125M and MPT-760M (T 2,048, k 15,360, n 80M, 1,000 targets)."""
    T, k, n, n_test = 2048, 15360, 80e6, 1000
    ours = trak_flops(2 * params * T, int(params), k, int(n), n_test)  # forward FLOPs of one window: 2pT
    by_hand = (6 * params * T + 4 * k**2 + 2 * k * params - 2 * k + 2 * k * n_test - n_test) * n + (
        6 * params * T * n_test + k * (2 * params - 1) * n_test - k**2 + k**3
    )  # eq. 28-29
    assert ours == pytest.approx(by_hand, rel=1e-6)
    assert ours == pytest.approx(published, rel=5e-3)


@pytest.mark.parametrize("projector", ["sjlt", "dense"])
def test_scores_are_the_papers_estimator_computed_directly(trained, tmp_path, projector):
    """phi(z)^T (Phi^T Phi)^-1 Phi^T from the store's own projected gradients, up to traker's positive scale."""
    arrays, task, model = trained
    _featurize(trained, tmp_path / "store", tmp_path / "work", projector=projector)
    xt, yt = arrays["target_inputs"], arrays["target_labels"]
    target_batches = lambda: batches(task, Arrays(xt, yt), np.arange(10), 5, CPU)  # noqa: E731
    scores, _ = store.score(model, task.modelout, target_batches, 10, tmp_path / "store", CPU)
    seed = store.store_summary(tmp_path / "store")["seed"]
    store.featurize(
        model, task.modelout, target_batches, 10, tmp_path / "targets", tmp_path / "w2", 32, CPU, seed, 0.0, projector
    )
    phi = np.load(tmp_path / "store/0/grads.mmap", mmap_mode="r").astype(np.float64)
    phi_targets = np.load(tmp_path / "targets/0/grads.mmap", mmap_mode="r").astype(np.float64)
    direct = (phi_targets @ np.linalg.inv(phi.T @ phi) @ phi.T).T  # (n_train, n_targets)
    scale = float((direct * scores).sum() / (scores * scores).sum())
    assert scale > 0
    np.testing.assert_allclose(scores * scale, direct, rtol=1e-2, atol=1e-3 * np.abs(direct).max())


def test_a_store_from_another_projector_is_refused(trained, tmp_path):
    arrays, task, model = trained
    _featurize(trained, tmp_path / "store", tmp_path / "work", projector="dense")
    info = tmp_path / "store/proxyscale.json"
    info.write_text(info.read_text().replace('"CPUProjector"', '"CudaProjector"'))
    xt, yt = arrays["target_inputs"], arrays["target_labels"]
    with pytest.raises(DataError, match="built with CudaProjector, but scoring on cpu would project with CPUProjector"):
        store.score(
            model,
            task.modelout,
            lambda: batches(task, Arrays(xt, yt), np.arange(10), 5, CPU),
            10,
            tmp_path / "store",
            CPU,
        )


def test_language_model_store_and_scores(tmp_path):
    """The LM output function through traker: a training window scores itself highest."""
    from proxyscale.datamodels.tasks import LMTask

    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 20, (40, 9))
    mask = np.ones_like(tokens, dtype=bool)
    mask[:, 0] = False
    task = LMTask(vocab_size=20, context_length=8)
    model, _ = fit(
        task,
        {"d_model": 8, "n_layers": 1, "n_heads": 2},
        Arrays(tokens, mask),
        np.arange(40),
        Recipe(batch_size=8, lr=0.02),
        3,
        0,
        CPU,
    )
    store.featurize(
        model,
        task.modelout,
        lambda: batches(task, Arrays(tokens, mask), np.arange(40), 10, CPU),
        40,
        tmp_path / "s",
        tmp_path / "w",
        24,
        CPU,
    )
    scores, q = store.score(
        model,
        task.modelout,
        lambda: batches(task, Arrays(tokens, mask), np.arange(40), 10, CPU),
        40,
        tmp_path / "s",
        CPU,
    )
    assert scores.shape == (40, 40) and ((q > 0) & (q < 1)).all()
    assert (scores.argmax(0) == np.arange(40)).mean() > 0.8


def test_a_singular_phi_t_phi_is_one_line_saying_what_to_change(trained, tmp_path, monkeypatch):
    """Exact singularity comes from projected dimensions that only gradient-free parameters reach (a
    linear MNIST model at k = 4096 for 5,000 images hit it); faked here where traker inverts."""

    def singular(matrix):
        raise torch.linalg.LinAlgError("linalg.inv: The diagonal element 7 is zero")

    monkeypatch.setattr(torch.linalg, "inv", singular)
    with pytest.raises(
        ConfigError, match=r"trak.proj_dim: Phi\^T Phi of .*store is singular \(32 projected dimensions, 120 "
    ):
        _featurize(trained, tmp_path / "store", tmp_path / "work")
    assert not (tmp_path / "store").exists()
