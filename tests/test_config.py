"""Cross-key configuration checks name the offending key."""

import copy

import pytest

from conftest import tiny_config, validated
from proxyscale.config import (
    check_config,
    datamodel_settings,
    proxies,
    resources,
    selection_distributions,
    selection_methods,
)
from proxyscale.datamodels.conditioning import projection_warning
from proxyscale.errors import ConfigError
from proxyscale.selection.registry import parse_method


def _broken(edit):
    config = validated(copy.deepcopy(tiny_config()))
    edit(config)
    return config


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: c.update(reference="huge"), "reference: size 'huge' is not defined under sizes"),
        (
            lambda c: c["sources"]["web"][0].update(path="missing.jsonl"),
            r"sources.web\[0\].path: file 'missing.jsonl' does not exist",
        ),
        (lambda c: c["distributions"].update(bad={"news": 1}), "distributions.bad: 'news' is not a source"),
        (lambda c: c["test_sets"]["c4"].pop("path"), "test_sets.c4.path: required"),
        (lambda c: c["sizes"]["tiny"].update(n_heads=3), "sizes.tiny: d_model=8 is not divisible by n_heads=3"),
        (lambda c: c.update(resources={"training": {"mem_mb": 1}}), "resources.training: not a rule group"),
        (
            lambda c: c.update(resources={"data": {"processes": 2}}),
            "resources.data.processes: only train and datamodels rules train data-parallel",
        ),
        (
            lambda c: c.update(resources={"attribution": {"gpu": 1}}),
            "resources.attribution: this group is now called datamodels",
        ),
        (
            lambda c: c.update(resources={"train": {"processes": 4, "gpu": 2}}),
            r"resources.train.processes: 4 processes need as many GPUs \(gpu: 2\)",
        ),
        (lambda c: c.update(tokenizer={"kind": "bpe"}), "tokenizer.vocab_size: required when tokenizer.kind is 'bpe'"),
        (lambda c: c.update(tokenizer={"kind": "hf"}), "tokenizer: kind 'hf' needs path"),
        (
            lambda c: c.update(tokenizer={"kind": "hf", "path": "no.json"}),
            "tokenizer.path: file 'no.json' does not exist",
        ),
        (lambda c: c["sources"]["web"].append({"format": "hf"}), r"sources.web\[1\].dataset: required for format 'hf'"),
        (
            lambda c: c["sources"]["web"].append({"format": "jsonl"}),
            r"sources.web\[1\].path: required for format 'jsonl'",
        ),
        (
            lambda c: c["selection"].update(reference="d99"),
            "selection.reference: size 'd99' is not defined under selection.sizes",
        ),
        (lambda c: c["selection"].update(targets=["squad"]), "selection.targets: 'squad' is not a test set"),
        (
            lambda c: c["selection"]["pool"].update(distributions=["news"]),
            "selection.pool.distributions: 'news' is not a distribution",
        ),
        (
            lambda c: c["selection"].update(fraction=0.0001),
            "selection.fraction: 0.0001 of 1000 pool examples keeps none",
        ),
        (lambda c: c["selection"].update(distributions=["lambada/dsdm-d99"]), "'dsdm-d99' is not a selection"),
        (lambda c: c["selection"].update(distributions=["c4/random"]), "'c4' is not one of selection.targets"),
        (
            lambda c: c["selection"]["sizes"]["d4"].update(n_heads=3),
            "selection.sizes.d4: d_model=4 is not divisible by n_heads=3",
        ),
        (
            lambda c: c["attribution"]["trak"].update(proj_dim=128),
            r"attribution.trak.proj_dim: 128 exceeds the 100 training examples \(attribution.n_train\), so Phi\^T Phi "
            r"is singular with lambda_reg 0; use at most 20",
        ),
        (
            lambda c: c["selection"]["trak"].update(proj_dim=1024),
            r"selection.trak.proj_dim: 1024 exceeds the 1000 training examples \(selection.pool.size\)",
        ),
    ],
)
def test_bad_config_names_the_key(edit, message):
    with pytest.raises(ConfigError, match=message):
        check_config(_broken(edit))


def test_good_config_and_lookups():
    config = validated(tiny_config())
    check_config(config)
    assert proxies(config) == ["tiny"]
    assert resources(config, "train") == {"mem_mb": 2000, "runtime": 30, "gpu": 0, "threads": 1, "processes": 1}


def test_selection_lookups():
    config = validated(tiny_config())
    assert selection_methods(config) == ["dsdm-d4", "dsdm-d8", "bot_dsdm-d8", "dsir", "classifier", "random"]
    assert [parse_method(m) for m in ("dsdm-d4", "bot_dsdm-d8", "dsir")] == [
        ("dsdm", "d4"),
        ("bot_dsdm", "d8"),
        ("dsir", None),
    ]
    with pytest.raises(ConfigError, match="'dsir-d4' is not a selection"):
        parse_method("dsir-d4")
    config["selection"]["distributions"] = ["lambada/dsdm-d8"]
    assert selection_distributions(config) == {"lambada-dsdm-d8": ("lambada", "dsdm-d8")}
    assert datamodel_settings(config, "selection")["sizes"] is config["selection"]["sizes"]
    assert datamodel_settings(config, "attribution")["sizes"] is config["attribution"]["vision"]["sizes"]
    # vision keeps its epochs; language models (selection, attribution's lm setting) a Chinchilla budget
    tokens = {"tokens_per_param": config["model"]["tokens_per_param"]}
    assert datamodel_settings(config, "attribution")["budget"] == {"epochs": config["attribution"]["vision"]["epochs"]}
    assert datamodel_settings(config, "selection")["budget"] == tokens
    assert datamodel_settings(config, "selection")["pool_key"] == "selection.pool.size"
    config["attribution"]["setting"] = "lm"
    assert datamodel_settings(config, "attribution")["budget"] == tokens
    with pytest.raises(ConfigError, match="'lds' is not an experiment"):
        datamodel_settings(config, "lds")


def test_the_attribution_and_selection_blocks_are_optional():
    from proxyscale.config import datamodel_experiments

    config = validated(tiny_config())
    assert datamodel_experiments(config) == ["attribution", "selection"]
    del config["selection"]
    check_config(config)
    assert datamodel_experiments(config) == ["attribution"] and selection_distributions(config) == {}
    del config["attribution"]
    check_config(config)
    assert datamodel_experiments(config) == []


def test_drop_removes_what_an_overlay_names():
    from proxyscale.config import drop_keys

    config = copy.deepcopy(tiny_config())
    config["drop"] = ["sizes.tiny", "attribution.vision.sizes.w2"]
    drop_keys(config)
    assert "drop" not in config and list(config["sizes"]) == ["ref"]
    assert list(config["attribution"]["vision"]["sizes"]) == ["w4"]
    config["drop"] = ["sizes.huge"]
    with pytest.raises(ConfigError, match="drop: 'sizes.huge' is not a key of the config"):
        drop_keys(config)


def test_a_projection_larger_than_the_training_set_is_allowed_with_regularisation():
    config = _broken(lambda c: c["attribution"]["trak"].update(proj_dim=128, lambda_reg=1.0))
    check_config(config)


def test_the_projection_warning_starts_above_a_fifth_of_the_training_examples():
    assert projection_warning(400, 2000, 0.0, "k") is None
    assert projection_warning(401, 2000, 1e-3, "k") is None  # regularised: no warning
    message = projection_warning(401, 2000, 0.0, "attribution.trak.proj_dim")
    assert message.startswith("attribution.trak.proj_dim 401 is 20.1% of the 2000 training examples with lambda_reg 0")
    assert "use at most 400" in message


def test_each_groups_cluster_placement_reaches_its_rules_only_where_set():
    from proxyscale.config import rule_resources

    config = {
        "resources": {
            "train": {"gpu": 4, "processes": 4, "gpu_model": "h100", "slurm_partition": "gpu", "constraint": "ib"},
            "datamodels": {"gres": "gpu:a100:1", "slurm_extra": "--signal=USR1@300"},
        }
    }
    assert rule_resources(config, "train", training=True) == {
        "mem_mb": 2000, "runtime": 30, "gpu": 4, "processes": 4, "gpu_model": "h100", "slurm_partition": "gpu",
        "constraint": "ib",
    }  # fmt: skip
    assert rule_resources(config, "train") == {  # a rule of the group that does not train: one GPU
        "mem_mb": 2000, "runtime": 30, "gpu": 1, "gpu_model": "h100", "slurm_partition": "gpu", "constraint": "ib",
    }  # fmt: skip
    # gres says how many GPUs (the plugin refuses gpu with it); nothing set, nothing passed
    assert rule_resources(config, "datamodels") == {
        "mem_mb": 2000, "runtime": 30, "gres": "gpu:a100:1", "slurm_extra": "--signal=USR1@300",
    }  # fmt: skip
    assert rule_resources(config, "data") == {"mem_mb": 2000, "runtime": 30, "gpu": 0}
