"""TRAK stores: each checkpoint featurized in shards streamed to disk, resumable after an interrupted job,
scored read-only in row blocks (the same scores however the rows are sharded), and kept when scoring
fails; Q computed only when asked for."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import MNIST
from proxyscale.artifacts import load_npy
from proxyscale.attribution.dataset import vision_dataset
from proxyscale.datamodels import store
from proxyscale.datamodels.cost import trak_flops
from proxyscale.datamodels.examples import Arrays
from proxyscale.datamodels.projectors import effective_proj_dim
from proxyscale.datamodels.tasks import make_task
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


def _train(trained):
    arrays = trained[0]
    return Arrays(arrays["train_inputs"], arrays["train_labels"])


def _targets(trained):
    arrays = trained[0]
    return Arrays(arrays["target_inputs"], arrays["target_labels"])


def _featurize(trained, work, on_batch=None, projector="sjlt", micro=None, **kw):
    _, task, model = trained
    return store.featurize(
        model, task, _train(trained), 20, work, 32, CPU, projector=projector, fingerprint="ckpt-a",
        micro_batch_size=micro, on_batch=on_batch, **kw,
    )  # fmt: skip


def _score(trained, shard_dirs, out, groups=None, lambda_reg=0.0):
    _, task, model = trained
    shard_dirs = shard_dirs if isinstance(shard_dirs, list) else [shard_dirs]
    return store.score(model, task, _targets(trained), 5, shard_dirs, out, CPU, groups, lambda_reg)


class Interrupted(Exception):
    pass


def test_interrupted_featurize_resumes_where_it_stopped_with_the_same_rows(trained, tmp_path):
    def die_after_two(computed):
        if computed == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        _featurize(trained, tmp_path / "work", die_after_two)
    assert json.loads((tmp_path / "work/progress.json").read_text()) == {"rows": 40}
    assert not (tmp_path / "work/proxyscale.json").exists()

    resumed = _featurize(trained, tmp_path / "work")
    assert resumed["resumed"] and resumed["batches"] == 6 and resumed["batches_computed"] == 4
    clean = _featurize(trained, tmp_path / "clean")
    assert not clean["resumed"] and clean["batches_computed"] == 6
    for name in ("grads.npy", "q.npy", "xtx.npy"):
        np.testing.assert_array_equal(load_npy(tmp_path / "work" / name), load_npy(tmp_path / "clean" / name))


def test_a_store_interrupted_after_its_first_row_resumes_from_the_second(trained, tmp_path):
    _, task, model = trained
    work = tmp_path / "work"

    def die(computed):
        raise Interrupted

    with pytest.raises(Interrupted):
        store.featurize(model, task, _train(trained), 1, work, 32, CPU, fingerprint="f", on_batch=die)
    assert json.loads((work / "progress.json").read_text()) == {"rows": 1}
    resumed = store.featurize(model, task, _train(trained), 40, work, 32, CPU, fingerprint="f")
    assert resumed["resumed"] and resumed["batches_computed"] == 3  # rows 1-40, 41-80, 81-119


def test_the_store_summary_records_what_was_built(trained, tmp_path):
    """Under new parents; the projection's seed defaults to 0, and the summary (also the shard's JSON)
    holds its sizes, rows, seed, the precision of its gradients and a wall time; Q is stored as float32."""
    from proxyscale.models import built_parameters

    work = tmp_path / "trak_work" / "w2" / "0"
    summary = _featurize(trained, work)
    assert json.loads((work / store.SUMMARY).read_text()) == summary
    assert set(summary) == {
        "n_train", "rows", "proj_dim", "grad_dim", "projector", "projector_choice", "projector_batch", "store_dtype",
        "gradient_dtype", "q", "batches", "batches_computed", "resumed", "input_wait_seconds", "seed", "wall_seconds",
    }  # fmt: skip
    assert (summary["n_train"], summary["rows"], summary["proj_dim"], summary["seed"]) == (120, [0, 120], 32, 0)
    assert summary["gradient_dtype"] == "float32" and summary["q"]
    assert summary["grad_dim"] == built_parameters(trained[2]) and 0 < summary["wall_seconds"] < 600
    assert load_npy(work / "q.npy").dtype == np.float32
    seeded = tmp_path / "seeded"
    _featurize(trained, seeded, seed=0)
    np.testing.assert_array_equal(load_npy(work / "grads.npy"), load_npy(seeded / "grads.npy"))
    _featurize(trained, tmp_path / "other", seed=1)
    assert not np.array_equal(load_npy(work / "grads.npy"), load_npy(tmp_path / "other/grads.npy"))


def test_micro_batches_give_the_same_store(trained, tmp_path):
    whole = _featurize(trained, tmp_path / "whole")
    parts = _featurize(trained, tmp_path / "parts", micro=3)
    assert whole["projector_batch"] == 20 and parts["projector_batch"] == 3
    a, b = load_npy(tmp_path / "whole/grads.npy"), load_npy(tmp_path / "parts/grads.npy")
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6 * np.abs(a).max())


def test_float16_store_holds_the_rows_at_half_the_bytes(trained, tmp_path):
    _featurize(trained, tmp_path / "f32")
    _featurize(trained, tmp_path / "f16", store_dtype="float16")
    a, b = load_npy(tmp_path / "f32/grads.npy"), load_npy(tmp_path / "f16/grads.npy")
    assert b.dtype == np.float16 and b.nbytes * 2 == a.nbytes
    np.testing.assert_allclose(b.astype(np.float32), a, rtol=1e-3, atol=1e-3 * np.abs(a).max())


def test_work_dir_of_another_checkpoint_is_discarded(trained, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "proxyscale.fingerprint").write_text("ckpt-b")
    (work / "stale").write_text("x")
    summary = _featurize(trained, work)
    assert not summary["resumed"] and summary["batches_computed"] == 6
    assert not (work / "stale").exists()


def test_fingerprint_reads_metadata_not_contents(tmp_path):
    path = tmp_path / "f.npy"
    path.write_bytes(b"x" * 10)
    a = store.inputs_fingerprint([path], {"k": 1})
    assert store.inputs_fingerprint([path], {"k": 2}) != a
    path.write_bytes(b"y" * 11)
    assert store.inputs_fingerprint([path], {"k": 1}) != a
    assert store.inputs_fingerprint([path], {"k": 1, "j": 2}) == store.inputs_fingerprint([path], {"j": 2, "k": 1})
    dataset = tmp_path / "dataset"  # a directory input: every file in it counts
    (dataset / "sub").mkdir(parents=True)
    (dataset / "sub" / "tokens.npy").write_bytes(b"x" * 10)
    before = store.inputs_fingerprint([dataset], {"k": 1})
    (dataset / "sub" / "tokens.npy").write_bytes(b"x" * 12)
    assert store.inputs_fingerprint([dataset], {"k": 1}) != before


def test_publish_makes_the_work_directory_the_shard_under_new_parents(tmp_path):
    work = tmp_path / "work" / "ckpt"
    work.mkdir(parents=True)
    (work / store.SUMMARY).write_text('{"proj_dim": 8}')
    (work / "grads.npy").write_bytes(b"g")
    target = tmp_path / "results" / "shards" / "0-of-1"
    store.publish(work, target)
    assert sorted(p.name for p in target.iterdir()) == sorted(["grads.npy", store.SUMMARY])
    assert not (tmp_path / "work").exists()  # the emptied parents go too
    again = tmp_path / "work2"
    again.mkdir()
    (again / store.SUMMARY).write_text('{"proj_dim": 16}')
    store.publish(again, target)  # a shard already there is replaced
    assert sorted(p.name for p in target.iterdir()) == [store.SUMMARY]


def test_scores_have_the_datamodel_shape_and_leave_the_store_unchanged(trained, tmp_path):
    _featurize(trained, tmp_path / "store")
    before = sorted((p.name, p.stat().st_mtime_ns) for p in (tmp_path / "store").rglob("*"))
    result = _score(trained, tmp_path / "store", tmp_path / "scores.npy")
    scores, q = np.load(tmp_path / "scores.npy"), store.load_q(tmp_path / "store")
    assert result["shape"] == [120, 10] and scores.shape == (120, 10) and q.shape == (120,)
    assert 0 < result["score_seconds"] < 600
    assert np.isfinite(scores).all() and ((q > 0) & (q < 1)).all()  # Q = 1 - p of the true class
    assert sorted((p.name, p.stat().st_mtime_ns) for p in (tmp_path / "store").rglob("*")) == before


def test_grouped_scores_are_the_means_of_their_targets_columns(trained, tmp_path, monkeypatch):
    monkeypatch.setattr(store, "ROW_BLOCK_BYTES", 32 * 4 * 7)  # 7 rows per block: several blocks
    _featurize(trained, tmp_path / "store")
    _score(trained, tmp_path / "store", tmp_path / "all.npy")
    groups = np.array([0, 1, 0, 2, 1, 0, 2, 2, 1, 0])
    _score(trained, tmp_path / "store", tmp_path / "grouped.npy", groups)
    full, grouped = np.load(tmp_path / "all.npy"), np.load(tmp_path / "grouped.npy")
    assert grouped.shape == (120, 3)
    expected = np.stack([full[:, groups == j].mean(1) for j in range(3)], axis=1)
    np.testing.assert_allclose(grouped, expected, rtol=1e-4, atol=1e-6 * np.abs(full).max())


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


@pytest.mark.parametrize("projector, lambda_reg", [("sjlt", 0.0), ("dense", 0.0), ("sjlt", 0.5)])
def test_scores_are_the_papers_estimator_computed_directly(trained, tmp_path, monkeypatch, projector, lambda_reg):
    """Phi (Phi^T Phi + lambda I)^-1 phi(z), with traker's normalisation of the inverse (divided by the
    mean of its absolute entries), computed here in float64 from the store's own projected gradients: no
    free scale. Phi is read 7 rows at a time, as a store too large for memory is: Phi^T Phi sums them all."""
    monkeypatch.setattr(store, "ROW_BLOCK_BYTES", 7 * 32 * 4)
    _, task, model = trained
    _featurize(trained, tmp_path / "store", projector=projector)
    _score(trained, tmp_path / "store", tmp_path / "scores.npy", lambda_reg=lambda_reg)
    scores = np.load(tmp_path / "scores.npy")
    phi = load_npy(tmp_path / "store/grads.npy").astype(np.float64)
    phi_targets = store.target_gradients(model, task, _targets(trained), 5, tmp_path / "store", CPU).astype(np.float64)
    inverse = np.linalg.inv(phi.T @ phi + lambda_reg * np.eye(phi.shape[1]))
    direct = phi @ (inverse / np.abs(inverse).mean()) @ phi_targets.T  # (n_train, n_targets)
    np.testing.assert_allclose(scores, direct, rtol=2e-3, atol=2e-3 * np.abs(direct).max())


def test_a_store_from_another_projector_is_refused(trained, tmp_path):
    _featurize(trained, tmp_path / "store", projector="dense")
    info = tmp_path / "store/proxyscale.json"
    info.write_text(info.read_text().replace('"CPUProjector"', '"CudaProjector"'))
    with pytest.raises(
        DataError,
        match="built with CudaProjector, but scoring on cpu would project with CPUProjector; score on the kind of "
        "device that featurized, or delete the store to rebuild it$",
    ):
        _score(trained, tmp_path / "store", tmp_path / "scores.npy")


def test_a_store_of_another_projection_size_is_refused(trained, tmp_path):
    """A store of exact gradients (k at least the parameters) that says it has more dimensions than the model."""
    from proxyscale.models import built_parameters

    _, task, model = trained
    n = built_parameters(model)
    store.featurize(model, task, _train(trained), 20, tmp_path / "store", 10**4, CPU, fingerprint="ckpt-a")
    info = tmp_path / "store/proxyscale.json"
    info.write_text(info.read_text().replace(f'"proj_dim": {n}', '"proj_dim": 1000000'))
    with pytest.raises(DataError, match=f"store has projection size 1000000, model gives {n}$"):
        _score(trained, tmp_path / "store", tmp_path / "scores.npy")


def test_a_failed_scoring_keeps_the_featurized_shard_and_the_rerun_only_scores(trained, tmp_path, monkeypatch):
    """What the trak jobs do (featurize and publish a shard; score and write the store), with scoring
    failing once: the shard stays as it was, no score file or store is left, and the rerun computes no
    training gradient again."""
    work, shard, published, out = tmp_path / "work", tmp_path / "shard", tmp_path / "store", tmp_path / "scores.npy"
    _featurize(trained, work)
    store.publish(work, shard)
    built = {p.name: p.stat().st_mtime_ns for p in shard.iterdir()}
    real = store.target_gradients

    def out_of_memory(*args, **kwargs):
        raise MemoryError("scoring ran out of memory")

    monkeypatch.setattr(store, "target_gradients", out_of_memory)
    with pytest.raises(MemoryError):
        _score(trained, shard, out)
    assert not out.exists() and not published.exists()
    assert {p.name: p.stat().st_mtime_ns for p in shard.iterdir()} == built

    monkeypatch.setattr(store, "target_gradients", real)
    store.write_store([shard], published, _score(trained, shard, out))
    assert np.load(out).shape == (120, 10) and store.store_summary(published)["score_seconds"] > 0
    assert sorted(p.name for p in published.iterdir()) == ["proxyscale.json", "q.npy"]  # small: no gradients
    assert {p.name: p.stat().st_mtime_ns for p in shard.iterdir()} == built


def test_language_model_store_and_scores(tmp_path):
    """The LM output function through traker: a training window scores itself highest."""
    from proxyscale.datamodels.tasks import LMTask

    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 20, (40, 9))
    mask = np.ones_like(tokens, dtype=bool)
    mask[:, 0] = False
    task = LMTask(vocab_size=20, context_length=8)
    examples = Arrays(tokens, mask)
    spec = {"d_model": 8, "n_layers": 1, "n_heads": 2}
    model, _ = fit(task, spec, examples, np.arange(40), Recipe(batch_size=8, lr=0.02), 3, 0, CPU)
    store.featurize(model, task, examples, 10, tmp_path / "s", 24, CPU, micro_batch_size=4)
    store.score(model, task, examples, 10, [tmp_path / "s"], tmp_path / "scores.npy", CPU)
    scores, q = np.load(tmp_path / "scores.npy"), store.load_q(tmp_path / "s")
    assert scores.shape == (40, 40) and ((q > 0) & (q < 1)).all()
    assert (scores.argmax(0) == np.arange(40)).mean() > 0.8


def test_a_singular_phi_t_phi_is_one_line_saying_what_to_change(trained, tmp_path, monkeypatch):
    """Exact singularity comes from projected dimensions that only gradient-free parameters reach (a
    linear MNIST model at k = 4096 for 5,000 images hit it); faked here where the inverse is taken."""

    def singular(matrix):
        raise torch.linalg.LinAlgError("linalg.inv: The diagonal element 7 is zero")

    monkeypatch.setattr(torch.linalg, "inv", singular)
    _featurize(trained, tmp_path / "ckpt" / "work")
    with pytest.raises(
        ConfigError,
        match=r"trak.proj_dim: Phi\^T Phi of .*ckpt is singular \(32 projected dimensions, 120 .* "
        r"use at most 24 \(a fifth",
    ):
        _score(trained, tmp_path / "ckpt" / "work", tmp_path / "scores.npy")
    assert not (tmp_path / "scores.npy").exists()


def test_shard_rows_tile_the_training_rows_in_order():
    for n, shards in [(120, 1), (120, 3), (120, 7), (5, 5), (3, 4)]:
        ranges = [store.shard_rows(n, i, shards) for i in range(shards)]
        assert [r for part in ranges for r in part] == list(range(n))
        assert max(map(len, ranges)) - min(map(len, ranges)) <= 1
    with pytest.raises(ValueError, match="shard 3 of 3 does not exist"):
        store.shard_rows(10, 3, 3)


@pytest.mark.parametrize("shards", [3, 7])  # 7 does not divide the 120 rows
def test_sharded_featurizing_gives_the_unsharded_scores_q_and_summary(trained, tmp_path, monkeypatch, shards):
    """Each shard featurizes its own rows (in its own job, on its own device in the workflow); the gather
    sums their partial Phi^T Phi: the scores equal one shard's within float32 rounding (the sum's order
    differs), Q is the same vector, and the store's summary lists each shard's rows and wall time."""
    monkeypatch.setattr(store, "ROW_BLOCK_BYTES", 32 * 4 * 7)  # several blocks per shard too
    _featurize(trained, tmp_path / "whole")
    whole = _score(trained, tmp_path / "whole", tmp_path / "whole.npy", lambda_reg=0.1)
    store.write_store([tmp_path / "whole"], tmp_path / "whole_store", whole)
    _, task, model = trained
    dirs = [tmp_path / f"{i}-of-{shards}" for i in range(shards)]
    for i, d in enumerate(dirs):
        store.featurize(
            model, task, _train(trained), 20, d, 32, CPU, fingerprint="f", rows=store.shard_rows(120, i, shards)
        )
    split = _score(trained, dirs, tmp_path / "split.npy", lambda_reg=0.1)
    store.write_store(dirs, tmp_path / "split_store", split)
    a, b = np.load(tmp_path / "whole.npy"), np.load(tmp_path / "split.npy")
    assert split["shape"] == whole["shape"] == [120, 10]
    np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5 * np.abs(a).max())
    np.testing.assert_array_equal(store.load_q(tmp_path / "split_store"), store.load_q(tmp_path / "whole_store"))
    summary = store.store_summary(tmp_path / "split_store")
    assert [s["rows"] for s in summary["shards"]] == [
        [r.start, r.stop] for r in (store.shard_rows(120, i, shards) for i in range(shards))
    ]
    assert summary["wall_seconds"] == pytest.approx(sum(s["wall_seconds"] for s in summary["shards"]))
    assert summary["n_train"] == 120 and summary["lambda_reg"] == 0.1


def test_shards_that_do_not_tile_the_rows_are_refused(trained, tmp_path):
    _, task, model = trained
    for name, rows in (("a", range(0, 50)), ("b", range(60, 120))):
        store.featurize(model, task, _train(trained), 20, tmp_path / name, 32, CPU, rows=rows)
    with pytest.raises(DataError, match="the shards do not cover the training rows in order$"):
        _score(trained, [tmp_path / "a", tmp_path / "b"], tmp_path / "scores.npy")


def test_without_q_the_forward_pass_for_it_is_skipped(trained, tmp_path, monkeypatch):
    """Q's forward pass (traker's compute_loss_grad) runs only when Q is asked for; the store then has no
    Q, and asking for it is one line saying why."""
    from trak.gradient_computers import FunctionalGradientComputer

    calls = []
    real = FunctionalGradientComputer.compute_loss_grad
    monkeypatch.setattr(
        FunctionalGradientComputer, "compute_loss_grad", lambda self, b: calls.append(1) or real(self, b)
    )
    summary = _featurize(trained, tmp_path / "without", with_q=False)
    assert calls == [] and not summary["q"] and not (tmp_path / "without/q.npy").exists()
    store.write_store(
        [tmp_path / "without"], tmp_path / "store", _score(trained, tmp_path / "without", tmp_path / "s.npy")
    )
    with pytest.raises(DataError, match="has no Q \\(featurized without it: trak.q_term false\\)$"):
        store.load_q(tmp_path / "store")
    _featurize(trained, tmp_path / "with")
    assert len(calls) == 6  # one per batch
    np.testing.assert_array_equal(load_npy(tmp_path / "with/grads.npy"), load_npy(tmp_path / "without/grads.npy"))


def test_scoring_multiplies_by_the_inverse_once(trained, tmp_path, monkeypatch):
    """(Phi^T Phi)^-1 G^T is formed once; each block of rows then multiplies by that k x targets matrix,
    not by the k x k inverse (at k = 15,360 that was 2 n k^2 FLOPs more)."""
    from torch.overrides import TorchFunctionMode

    monkeypatch.setattr(store, "ROW_BLOCK_BYTES", 32 * 4 * 7)  # 18 blocks
    _featurize(trained, tmp_path / "store")
    shapes = []

    class Matmuls(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            if getattr(func, "__name__", "") == "matmul":
                shapes.append(tuple(args[1].shape))
            return func(*args, **(kwargs or {}))

    with Matmuls():
        _score(trained, tmp_path / "store", tmp_path / "scores.npy")
    assert shapes == [(32, 10)] * 19  # the inverse times G^T, then 18 blocks times that


def test_unfinished_work_of_another_shard_count_is_removed(tmp_path):
    """A checkpoint cut into 3 shards, then into 2 (trak.shards, or the runtime auto sizes them by,
    changed): the 3-shard work would never resume, so a 2-shard job removes it and keeps its siblings'."""
    ckpt = tmp_path / "trak_work" / "w2" / "0"
    for name in ("0-of-3", "2-of-3", "1-of-2"):
        (ckpt / name).mkdir(parents=True)
        (ckpt / name / "grads.npy").write_bytes(b"g")
    store.discard_other_shardings(ckpt / "0-of-2")
    assert sorted(p.name for p in ckpt.iterdir()) == ["1-of-2"]


def test_per_example_gradients_are_computed_without_tf32(trained, tmp_path, monkeypatch):
    """The summary says float32: on a GPU, cuDNN's convolutions would use TF32 by default. Both TF32
    switches are off while the gradients are computed, and as they were afterwards."""
    from trak.gradient_computers import FunctionalGradientComputer

    seen = []
    real = FunctionalGradientComputer.compute_per_sample_grad

    def spy(self, batch):
        seen.append((torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32))
        return real(self, batch)

    monkeypatch.setattr(FunctionalGradientComputer, "compute_per_sample_grad", spy)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", True)
    summary = _featurize(trained, tmp_path / "store")
    assert summary["gradient_dtype"] == "float32" and seen == [(False, False)] * 6
    assert torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
