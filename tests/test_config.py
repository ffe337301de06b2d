"""Cross-key configuration checks name the offending key."""

import copy

import pytest

from conftest import tiny_config
from proxyscale.config import check_config, proxies, resources
from proxyscale.errors import ConfigError


def _broken(edit):
    config = copy.deepcopy(tiny_config())
    edit(config)
    return config


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: c.update(reference="huge"), "reference: size 'huge' is not defined under sizes"),
        (lambda c: c["sources"]["web"][0].update(path="missing.jsonl"), r"sources.web\[0\].path: file 'missing.jsonl' does not exist"),
        (lambda c: c["distributions"].update(bad={"news": 1}), "distributions.bad: 'news' is not a source"),
        (lambda c: c["test_sets"]["c4"].pop("path"), "test_sets.c4.path: required"),
        (lambda c: c["sizes"]["tiny"].update(n_heads=3), "sizes.tiny: d_model=8 is not divisible by n_heads=3"),
        (lambda c: c.update(resources={"training": {"mem_mb": 1}}), "resources.training: not a rule group"),
    ],
)
def test_bad_config_names_the_key(edit, message):
    with pytest.raises(ConfigError, match=message):
        check_config(_broken(edit))


def test_good_config_and_lookups():
    config = tiny_config()
    check_config(config)
    assert proxies(config) == ["tiny"]
    assert resources(config, "train") == {"mem_mb": 2000, "runtime": 30, "gpu": 0, "threads": 1}
