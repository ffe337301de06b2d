"""A size's TRAK stores exported to traker's layout: traker's own TRAKer opens the directory, and its
finalize_features and finalize_scores give this project's datamodel (with Q, or without it as Q = 1);
each model id keeps its checkpoint's projection, which a TRAKer's own projector cannot reproduce, so
it is refused; gradients that were not kept are one line naming trak.keep_gradients."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch
from trak import TRAKer

from conftest import MNIST
from proxyscale.attribution.dataset import vision_dataset
from proxyscale.datamodels import store
from proxyscale.datamodels.datamodel import CheckpointScores, write_datamodel
from proxyscale.datamodels.examples import Arrays
from proxyscale.datamodels.projectors import checkpoint_seed
from proxyscale.datamodels.tasks import make_task
from proxyscale.datamodels.traker_layout import Checkpoint, export_traker, exported_summary, traker_projector
from proxyscale.errors import ConfigError, DataError
from proxyscale.training.fit import fit
from proxyscale.training.recipe import Recipe

CPU = torch.device("cpu")
K = 16
N_TRAIN, N_TARGETS = 120, 10


@pytest.fixture(scope="module")
def setting():
    """Two checkpoints (seeds 0 and 1) of a tiny MNIST ConvNet, their task, training set and targets."""
    arrays, spec = vision_dataset(MNIST, n_train=N_TRAIN, n_targets=N_TARGETS, seed=0)
    task = make_task(spec)
    train = Arrays(arrays["train_inputs"], arrays["train_labels"])
    targets = Arrays(arrays["target_inputs"], arrays["target_labels"])
    models = [
        fit(task, {"width": 2}, train, np.arange(N_TRAIN), Recipe(batch_size=20, lr=0.01), 2, seed, CPU)[0]
        for seed in range(2)
    ]
    return task, train, targets, models


def _featurize(setting, root, with_q: bool) -> list[list]:
    """Checkpoint i featurized in i + 1 shards, with its own projection seed, as trak_featurize does."""
    task, train, _, models = setting
    dirs = []
    for i, model in enumerate(models):
        shards = [root / str(i) / f"{s}-of-{i + 1}" for s in range(i + 1)]
        for s, shard in enumerate(shards):
            store.featurize(
                model, task, train, 20, shard, K, CPU, seed=checkpoint_seed(0, i),
                rows=store.shard_rows(N_TRAIN, s, i + 1), with_q=with_q,
            )  # fmt: skip
        dirs.append(shards)
    return dirs


@pytest.fixture(scope="module")
def with_q(setting, tmp_path_factory):
    return _featurize(setting, tmp_path_factory.mktemp("with_q"), with_q=True)


@pytest.fixture(scope="module")
def without_q(setting, tmp_path_factory):
    return _featurize(setting, tmp_path_factory.mktemp("without_q"), with_q=False)


def _datamodel_and_export(setting, shard_dirs, tmp_path, lambda_reg=0.0, q_term=True, dtype="float32"):
    """This project's datamodel (the trak and datamodel jobs: each checkpoint scored and stored, then
    averaged, times the mean Q with ``q_term``) and the size exported to traker's layout."""
    task, _, targets, models = setting
    scores, stores, checkpoints = [], [], []
    for i, (model, dirs) in enumerate(zip(models, shard_dirs)):
        scoring = store.score(model, task, targets, 5, dirs, tmp_path / f"scores{i}.npy", CPU, None, lambda_reg)
        store.write_store(dirs, tmp_path / f"store{i}", scoring)
        scores.append(tmp_path / f"scores{i}.npy")
        stores.append(tmp_path / f"store{i}")
        g = store.target_gradients(model, task, targets, 5, dirs[0], CPU)
        checkpoints.append(Checkpoint(f"results/attribution/models/w2/{i}.pt", dirs, g))
    qs = [store.load_q(s) for s in stores] if q_term else []
    write_datamodel(CheckpointScores(scores, qs), q_term, tmp_path / "datamodel.npy")
    summary = export_traker(checkpoints, tmp_path / "traker", "attribution", lambda_reg, dtype)
    return np.load(tmp_path / "datamodel.npy"), summary


def _traker(setting, save_dir, projector=None):
    task, _, _, models = setting
    info = exported_summary(save_dir)
    return TRAKer(
        model=models[0], task=task.modelout, train_set_size=N_TRAIN, save_dir=save_dir, load_from_save_dir=True,
        device="cpu", proj_dim=K, projector=projector, use_half_precision=info["use_half_precision"],
        lambda_reg=info["lambda_reg"], logging_level=logging.WARNING,
    )  # fmt: skip


def _traker_scores(setting, save_dir) -> np.ndarray:
    """traker's own scoring of the export: finalize every model id's features, then the experiment."""
    traker = _traker(setting, save_dir, traker_projector(save_dir))
    assert sorted(traker.saver.model_ids) == [0, 1]
    traker.finalize_features()
    return np.array(traker.finalize_scores(exported_summary(save_dir)["experiment"]))


@pytest.mark.parametrize("lambda_reg", [0.0, 0.5])
def test_traker_scores_the_export_as_the_projects_datamodel_with_q(setting, with_q, tmp_path, lambda_reg):
    ours, summary = _datamodel_and_export(setting, with_q, tmp_path, lambda_reg)
    theirs = _traker_scores(setting, tmp_path / "traker")
    assert theirs.shape == ours.shape == (N_TRAIN, N_TARGETS)
    scale = np.abs(ours).max()
    assert np.abs(theirs - ours).max() <= 1e-5 * scale, np.abs(theirs - ours).max() / scale
    assert summary["q"] and summary["lambda_reg"] == lambda_reg and summary["proj_dim"] == K


def test_a_half_precision_export_opens_with_use_half_precision(setting, with_q, tmp_path):
    """traker's default precision: float16 arrays, scored by a TRAKer with use_half_precision, agree to
    float16's rounding."""
    ours, summary = _datamodel_and_export(setting, with_q, tmp_path, dtype="float16")
    assert summary["use_half_precision"] and np.load(tmp_path / "traker/0/grads.mmap").dtype == np.float16
    theirs = _traker_scores(setting, tmp_path / "traker")
    assert theirs.dtype == np.float16 and np.abs(theirs - ours).max() <= 5e-3 * np.abs(ours).max()


def test_without_q_traker_gives_the_datamodel_without_q(setting, without_q, tmp_path):
    """Featurized without Q, the export's out-to-loss is ones: traker's scores are the mean of the
    checkpoints' scores, the datamodel with q_term false, and the summary says so."""
    ours, summary = _datamodel_and_export(setting, without_q, tmp_path, q_term=False)
    out_to_loss = np.load(tmp_path / "traker/1/out_to_loss.mmap")
    assert out_to_loss.shape == (N_TRAIN, 1) and (out_to_loss == 1).all()
    assert not summary["q"] and summary["out_to_loss"].startswith("ones: featurized without Q (trak.q_term false)")
    theirs = _traker_scores(setting, tmp_path / "traker")
    assert np.abs(theirs - ours).max() <= 1e-5 * np.abs(ours).max()


def test_the_export_records_each_model_ids_checkpoint_and_projection(setting, with_q, tmp_path):
    _, summary = _datamodel_and_export(setting, with_q, tmp_path)
    out = tmp_path / "traker"
    assert json.loads((out / "proxyscale.json").read_text()) == summary
    assert json.loads((out / "metadata.json").read_text()) == {
        "JL dimension": K, "JL matrix type": "proxyscale:SJLTProjector", "train set size": N_TRAIN,
    }  # fmt: skip
    models = summary["models"]
    assert [m["model_id"] for m in models] == [0, 1]
    assert [m["checkpoint"] for m in models] == [f"results/attribution/models/w2/{i}.pt" for i in range(2)]
    assert [m["seed"] for m in models] == [checkpoint_seed(0, 0), checkpoint_seed(0, 1)]  # differ per checkpoint
    assert {(m["projector"], m["proj_dim"]) for m in models} == {("SJLTProjector", K)}
    assert [s["rows"] for s in models[1]["shards"]] == [[0, 60], [60, 120]]
    experiments = json.loads((out / "experiments.json").read_text())
    assert experiments["attribution"]["num_targets"] == N_TARGETS
    assert experiments["attribution"]["scores_path"] == str((out / "scores/attribution.mmap").resolve())
    for j, dirs in enumerate(with_q):  # the shards' rows in order, as traker reads them
        phi = np.concatenate([np.load(d / "grads.npy") for d in dirs])
        np.testing.assert_array_equal(np.load(out / str(j) / "grads.mmap"), phi)
    assert not list(tmp_path.glob(".traker.*"))  # the temporary directory became the export


def test_traker_projectors_are_refused_and_the_stand_in_does_not_project(setting, with_q, tmp_path):
    """A TRAKer with traker's own projector would project new targets unlike the stored features: its
    saver refuses the export's JL matrix type. The stand-in opens it but refuses to project."""
    task, _, targets, _ = setting
    _datamodel_and_export(setting, with_q, tmp_path)
    out = tmp_path / "traker"
    with pytest.raises(AssertionError, match="proxyscale:SJLTProjector JL matrix"):
        _traker(setting, out)
    traker = _traker(setting, out, traker_projector(out))
    traker.finalize_features()
    traker.start_scoring_checkpoint("new", traker.model.state_dict(), 0, 5)
    with pytest.raises(DataError, match="traker cannot project new examples like them"):
        traker.score(task.to_batch(*targets.take(np.arange(5)), CPU), num_samples=5)


@pytest.mark.parametrize("missing", ["deleted", "empty"])
def test_gradients_that_were_not_kept_are_one_line_naming_keep_gradients(setting, with_q, tmp_path, missing):
    g = np.zeros((N_TARGETS, K), np.float32)
    gone = [tmp_path / "trak_shards/w2/1/0-of-1"] if missing == "deleted" else []  # temporary shards are deleted
    checkpoints = [Checkpoint("models/w2/0.pt", with_q[0], g), Checkpoint("models/w2/1.pt", gone, g)]
    with pytest.raises(ConfigError) as error:
        export_traker(checkpoints, tmp_path / "traker")
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("trak.keep_gradients: the projected gradients of models/w2/1.pt were not kept (")
    assert message.endswith("set trak.keep_gradients: true and featurize again")
    assert not (tmp_path / "traker").exists()


@pytest.mark.workflow
def test_export_traker_writes_each_size_that_traker_scores_as_the_workflows_datamodel(tmp_path):
    """The workflow's export_traker on the tiny config with kept gradients: for each attribution size,
    traker's scoring of the export equals the average of the size's checkpoint scores times their mean Q
    (the datamodel with Q) that the workflow's own trak jobs wrote. Without kept gradients, the target
    says in one line what to set."""
    from conftest import run_snakemake, tiny_config, write_config
    from proxyscale.datamodels.datamodel import datamodel
    from proxyscale.datamodels.tasks import load_model

    config = tiny_config()
    config.pop("selection")
    write_config(config, tmp_path)
    plan = run_snakemake(tmp_path, "-n", "export_traker")
    assert plan.returncode != 0 and "set attribution.trak.keep_gradients" in plan.stdout + plan.stderr
    config["attribution"]["trak"]["keep_gradients"] = True
    write_config(config, tmp_path)
    sizes, ids = config["attribution"]["vision"]["sizes"], range(config["attribution"]["checkpoints"])
    gathered = [f"results/attribution/{kind}/{s}/{i}" for kind in ("scores", "trak") for s in sizes for i in ids]
    gathered = [p + ".npy" if "/scores/" in p else p for p in gathered]  # the workflow's own trak jobs
    done = run_snakemake(tmp_path, "--cores", "2", "export_traker", *gathered)
    assert done.returncode == 0, done.stderr[-3000:]
    results = tmp_path / "results/attribution"
    for size in sizes:
        scores = [np.load(results / f"scores/{size}/{i}.npy") for i in ids]
        ours = datamodel(scores, [store.load_q(results / f"trak/{size}/{i}") for i in ids], q_term=True)
        out = results / f"traker/{size}"
        info = exported_summary(out)
        model, task, _ = load_model(results / f"models/{size}/0.pt", CPU)
        traker = TRAKer(
            model=model, task=task.modelout, train_set_size=ours.shape[0], save_dir=str(out), load_from_save_dir=True,
            device="cpu", proj_dim=info["proj_dim"], projector=traker_projector(out), lambda_reg=info["lambda_reg"],
            use_half_precision=info["use_half_precision"], logging_level=logging.WARNING,
        )  # fmt: skip
        traker.finalize_features()
        theirs = np.array(traker.finalize_scores(info["experiment"]))
        assert theirs.shape == ours.shape and np.abs(theirs - ours).max() <= 1e-5 * np.abs(ours).max()
