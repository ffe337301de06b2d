"""Attribution datasets (vision and language), their artifact, and seeded training on them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import MNIST
from proxyscale.attribution.dataset import lm_dataset, vision_dataset
from proxyscale.attribution.lds import subset_mask, subset_seed
from proxyscale.datamodels.dataset import load_dataset, save_dataset
from proxyscale.datamodels.examples import Arrays
from proxyscale.datamodels.tasks import LMTask, accuracy, load_model, make_task, outputs, save_model
from proxyscale.errors import ConfigError, DataError
from proxyscale.models.vision import pixel_stats
from proxyscale.training.fit import fit
from proxyscale.training.recipe import Recipe

CPU = torch.device("cpu")


def test_vision_split_is_disjoint_seeded_and_round_trips(tmp_path):
    arrays, task = vision_dataset(MNIST, 300, 50, seed=3)
    assert arrays["train_inputs"].shape == (300, 1, 14, 14) and arrays["target_inputs"].shape == (50, 1, 14, 14)
    assert not set(arrays["train_origin"]) & set(arrays["target_origin"])
    again, _ = vision_dataset(MNIST, 300, 50, seed=3)
    assert np.array_equal(again["train_origin"], arrays["train_origin"])
    train = arrays["train_inputs"] / 255.0
    assert task == {
        "setting": "vision", "family": "convnet", "image_shape": [1, 14, 14], "num_classes": 10,
        "pixel_mean": [pytest.approx(train.mean())], "pixel_std": [pytest.approx(train.std())],
    }  # fmt: skip
    assert 0.1 < task["pixel_mean"][0] < 0.2  # MNIST is mostly background: a fixed shift of 0.5 is far off
    save_dataset(arrays, task, tmp_path / "d")
    loaded = load_dataset(tmp_path / "d")
    assert loaded.task == task and np.array_equal(loaded["train_labels"], arrays["train_labels"])
    assert isinstance(loaded["train_inputs"], np.memmap)  # a job reads only the rows it takes
    np.testing.assert_array_equal(loaded.train.take([5, 2])[0], arrays["train_inputs"][[5, 2]])


def test_vision_inputs_are_standardised_per_channel_with_the_training_images_statistics():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (50, 3, 4, 4), dtype=np.uint8)
    images[:, 1] //= 4  # channels of different means and spreads
    mean, std = pixel_stats(images)
    task = make_task({"setting": "vision", "family": "mlp", "image_shape": [3, 4, 4], "num_classes": 2,
                      "pixel_mean": mean, "pixel_std": std})  # fmt: skip
    x, _ = task.to_batch(images, np.zeros(50, dtype=np.int64), CPU)
    np.testing.assert_allclose(x.mean(dim=(0, 2, 3)).numpy(), 0, atol=1e-5)
    np.testing.assert_allclose(x.std(dim=(0, 2, 3), correction=0).numpy(), 1, atol=1e-5)
    assert x[0, 1, 0, 0].item() == pytest.approx((images[0, 1, 0, 0] / 255 - mean[1]) / std[1], rel=1e-5)
    with pytest.raises(DataError, match="no pixel statistics .*--forcerun attribution_data"):
        make_task({"setting": "vision", "family": "mlp", "image_shape": [3, 4, 4], "num_classes": 2})


def test_asking_for_more_examples_than_exist_is_a_config_error():
    with pytest.raises(ConfigError, match="exceeds the 10000 images"):
        vision_dataset(MNIST, 9990, 20, seed=0)


def test_a_directory_that_is_not_a_dataset_is_refused(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(DataError, match="x: damaged or incomplete .*no task.json"):
        load_dataset(tmp_path / "x")


def _lm_arrays(tmp_path):
    stream = np.arange(1000) % 200
    shards = [tmp_path / "a.npy", tmp_path / "b.npy"]
    np.save(shards[0], stream[:500].astype(np.uint16))
    np.save(shards[1], stream[500:].astype(np.uint16))
    frame = pd.DataFrame(
        {
            "example_id": [0, 0, 1, 2],
            "is_gold": [True, False, True, True],
            "context_ids": [np.arange(40), np.arange(3), np.arange(5), np.arange(2)],
            "continuation_ids": [np.array([7, 8]), np.array([9]), np.array([1, 2, 3]), np.array([4])],
        }
    )
    spec = {"context_length": 16, "tokenizer": {"kind": "byte"}}
    arrays, task = lm_dataset(shards, frame, spec, 257, n_train=20, n_targets=3, seed=0)
    save_dataset(arrays, task, tmp_path / "d")
    return load_dataset(tmp_path / "d")


def test_lm_windows_are_disjoint_and_targets_score_only_the_continuation(tmp_path):
    arrays = _lm_arrays(tmp_path)
    task = arrays.task
    assert task["setting"] == "lm" and task["context_length"] == 16
    assert "train_inputs" not in arrays  # windows are read from the shards, not copied
    tokens, mask = arrays.train.take(np.arange(20))
    assert tokens.shape == (20, 17) and mask[:, 1:].all() and not mask[:, 0].any()
    assert np.array_equal(tokens[:, 0], arrays["train_origin"] % 200)  # each window's tokens from its start
    assert task["windows"]["lengths"] == [500, 500] and task["windows"]["window"] == 17
    assert len(set(arrays["train_origin"])) == 20 and np.all(np.diff(np.sort(arrays["train_origin"])) >= 17)
    by_id = dict(zip(arrays["target_origin"], zip(arrays["target_inputs"], arrays["target_labels"])))
    t, m = by_id[0]  # 40 context tokens cut from the left to fit 16 + 1 with the 2-token continuation
    assert t[m].tolist() == [7, 8] and m.sum() == 2 and t[:15].tolist() == list(range(25, 40))
    t, m = by_id[1]
    assert t[m].tolist() == [1, 2, 3] and m.sum() == 3


def test_fit_is_deterministic_per_seed_and_checkpoints_round_trip(tmp_path):
    arrays, spec = vision_dataset(MNIST, 200, 100, seed=0)
    task = make_task(spec)
    x, y = arrays["train_inputs"], arrays["train_labels"]
    recipe = Recipe(batch_size=25, lr=0.01)
    a, meta = fit(task, {"width": 4}, Arrays(x, y), np.arange(200), recipe, 4, 0, CPU)
    b, _ = fit(task, {"width": 4}, Arrays(x, y), np.arange(200), recipe, 4, 0, CPU)
    c, _ = fit(task, {"width": 4}, Arrays(x, y), np.arange(200), recipe, 4, 1, CPU)
    xt, yt = arrays["target_inputs"], arrays["target_labels"]
    out_a, out_b, out_c = (outputs(task, m, Arrays(xt, yt), 50, CPU) for m in (a, b, c))
    assert np.array_equal(out_a, out_b) and not np.array_equal(out_a, out_c)
    assert accuracy(task, a, Arrays(xt, yt), 50, CPU) > 0.4  # 200 images, 4 epochs: 4x the 10% of chance
    assert meta["flops"] == 3 * meta["forward_flops_per_example"] * 4 * 200
    save_model(a, spec, {"width": 4}, meta, tmp_path / "m.pt")
    model, task2, meta2 = load_model(tmp_path / "m.pt")
    assert np.array_equal(outputs(task2, model, Arrays(xt, yt), 50, CPU), out_a) and meta2 == meta


def test_language_models_train_on_windows_and_output_margins(tmp_path):
    data = _lm_arrays(tmp_path)
    task = make_task(data.task)
    assert isinstance(task, LMTask)
    size = {"d_model": 8, "n_layers": 1, "n_heads": 2}
    model, meta = fit(task, size, data.train, np.arange(20), Recipe(batch_size=5, lr=0.01), 2, 0, CPU)
    out = outputs(task, model, data.part("target"), 2, CPU)
    assert out.shape == (3,) and np.isfinite(out).all() and meta["params"] > 0
    assert accuracy(task, model, data.train, 5, CPU) is None


def test_a_rebuilt_shard_is_refused_by_the_dataset_cut_from_it(tmp_path):
    data = _lm_arrays(tmp_path)
    np.save(tmp_path / "a.npy", np.zeros(400, dtype=np.uint16))
    with pytest.raises(DataError, match="a.npy has changed since the dataset was built from it"):
        _ = load_dataset(data.path).train


def test_lds_subsets_are_fixed_by_seed_and_index_alone():
    a = [subset_mask(100, 0.5, 7, i) for i in range(3)]
    assert all(m.sum() == 50 for m in a)
    assert np.array_equal(subset_mask(100, 0.5, 7, 2), a[2]) and not np.array_equal(a[0], a[1])
    assert subset_seed(7, 0) != subset_seed(7, 1) and subset_seed(7, 0) >= 1000


def test_selection_dataset_splits_each_target_task_into_target_and_holdout_parts_sharing_no_passage(tmp_path):
    from proxyscale.selection.dataset import selection_dataset, target_split

    def frame(n, offset):
        return pd.DataFrame(
            {
                "example_id": np.arange(n),
                "passage": np.arange(n) // 2,  # two questions per passage
                "is_gold": True,
                "context_ids": [np.arange(5) + offset] * n,
                "continuation_ids": [np.array([offset + i % 7]) for i in range(n)],
            }
        )

    streams = {"a": tmp_path / "a.npy", "b": tmp_path / "b.npy"}
    np.save(streams["a"], np.full(300, 1, dtype=np.uint16))
    np.save(streams["b"], np.full(100, 2, dtype=np.uint16))
    spec = {
        "pool": {"size": 40},
        "context_length": 8,
        "seed": 0,
        "tokenizer": {"kind": "byte"},
    }
    targets = {"squad": frame(12, 100), "lambada": frame(14, 200)}
    splits = {name: target_split(f, 4, 6, 0, name) for name, f in targets.items()}
    arrays, task = selection_dataset(streams, targets, splits, spec, 257)
    save_dataset(arrays, task, tmp_path / "d")
    data = load_dataset(tmp_path / "d")
    assert task["targets"] == ["squad", "lambada"] and task["pool_sources"] == ["a", "b"]
    pool = data.train.tokens(np.arange(40))
    assert pool.shape == (40, 9)
    # the pool source of every window is the stream its tokens came from
    assert np.array_equal(pool[:, 0], np.where(arrays["train_source"] == 0, 1, 2))
    assert arrays["target_task"].tolist() == [0] * 4 + [1] * 4 and arrays["holdout_task"].tolist() == [0] * 6 + [1] * 6
    for t in (0, 1):
        target_ids = set(arrays["target_origin"][arrays["target_task"] == t])
        holdout_ids = set(arrays["holdout_origin"][arrays["holdout_task"] == t])
        assert (
            len(target_ids) == 4
            and len(holdout_ids) == 6
            and not {i // 2 for i in target_ids} & {i // 2 for i in holdout_ids}
        )
    # the windows are the split's examples: the first target example of squad is its gold tokens
    first = splits["squad"].query("part == 'target'")["example_id"].iloc[0]
    assert arrays["target_origin"][0] == first and arrays["target_inputs"][0, 5] == 100 + first % 7
    assert (arrays["holdout_inputs"][arrays["holdout_task"] == 1][:, :5] >= 200).all()
    with pytest.raises(
        ConfigError,
        match=r"^selection.n_targets \+ selection.n_holdout = 4 \+ 6 for 'squad' do not fit .* lower "
        r"selection.n_holdout to 4, or raise evaluation.max_examples \(9\)$",
    ):
        target_split(frame(9, 100), 4, 6, 0, "squad", 9)


def test_windows_are_read_in_runs_and_equal_their_tokens_wherever_they_lie(tmp_path, monkeypatch):
    """Known answer: every window's tokens are its slice of the concatenated shards, for rows in any order,
    repeated, overlapping, far apart or crossing a shard's end; windows side by side (or at most a window
    apart) in one shard are one read."""
    from proxyscale.datamodels import examples

    shards = [np.arange(0, 100, dtype=np.uint16), np.arange(100, 250, dtype=np.uint16)]
    paths = []
    for i, shard in enumerate(shards):
        np.save(tmp_path / f"{i}.npy", shard)
        paths.append(tmp_path / f"{i}.npy")
    stream = np.concatenate(shards).astype(np.int64)
    starts = np.array([0, 10, 20, 30, 95, 97, 120, 130, 200, 60, 10])  # 95 and 97 cross into the second shard
    windows = examples.Windows(paths, starts, 10)
    reads = []
    read = examples.Windows._read
    monkeypatch.setattr(examples.Windows, "_read", lambda self, *a: reads.append(a) or read(self, *a))
    rows = np.random.default_rng(0).permutation(len(starts))
    got = windows.tokens(rows)
    np.testing.assert_array_equal(got, np.stack([stream[s : s + 10] for s in starts[rows]]))
    # runs: 0-40 (0, 10, 10, 20, 30), 60, 120-140 (120, 130), 200; and 95, 97 read piece by piece (2 each)
    assert sorted(reads) == sorted([(0, 0, 40), (0, 60, 10), (1, 20, 20), (1, 100, 10), (0, 95, 5), (1, 0, 5),
                                    (0, 97, 3), (1, 0, 7)])  # fmt: skip
