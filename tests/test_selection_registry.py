"""The selection methods are described once (proxyscale.selection.registry): the schema, the rules'
params, Figure 8 and the report read every method from its entry."""

from __future__ import annotations

import pandas as pd
import yaml

from conftest import REPO
from proxyscale.selection import figures, methods, report
from proxyscale.selection.registry import METHODS, method_params, selection_names


def test_the_schema_lists_exactly_the_registered_methods():
    schema = yaml.safe_load((REPO / "schemas/config.schema.yaml").read_text())
    entry = schema["properties"]["selection"]["properties"]["methods"]
    assert entry["items"]["enum"] == list(METHODS)
    assert entry["default"] == list(METHODS)


def test_every_method_names_a_selector_that_exists():
    for m in METHODS.values():
        assert callable(getattr(methods, m.selector)), m.kind


def test_a_selection_depends_on_the_keys_its_method_reads_and_on_no_other():
    selection = {"fraction": None, "sizes": {"d4": {"d_model": 4}, "d8": {"d_model": 8}}, "reference": "d8",
                 "seed": 3, "ngram_buckets": 64}  # fmt: skip
    base = {"fraction": None, "reference": {"d_model": 8}, "tokens_per_param": 20}
    assert method_params("dsdm", selection, 20) == {"kind": "dsdm", **base, "seed": None, "ngram_buckets": None}
    assert method_params("bot_dsdm", selection, 20)["seed"] is None
    assert method_params("random", selection, 20) == {"kind": "random", **base, "seed": 3, "ngram_buckets": None}
    for kind in ("dsir", "classifier"):
        assert method_params(kind, selection, 20) == {"kind": kind, **base, "seed": 3, "ngram_buckets": 64}
    shared = {**selection, "fraction": 0.25}
    assert method_params("dsir", shared, 20) == {"kind": "dsir", "fraction": 0.25, "reference": None,
                                                 "tokens_per_param": None, "seed": 3, "ngram_buckets": 64}  # fmt: skip


def test_selection_names_follow_each_methods_datamodel_sizes():
    names = selection_names(["random", "dsdm", "bot_dsdm", "dsir"], ["d4", "d8"], "d8")
    assert names == ["random", "dsdm-d4", "dsdm-d8", "bot_dsdm-d8", "dsir"]


def test_figure_8_draws_every_method_other_than_dsdm_and_random_as_a_baseline():
    assert [m.kind for m in figures._BASELINES] == ["dsir", "classifier", "bot_dsdm"]
    assert {figures._LINE.kind, figures._COMPARISON.kind, *(m.kind for m in figures._BASELINES)} == set(METHODS)


def test_the_report_describes_every_method_in_the_registry_order():
    setup = {"n_pool": 10, "window": 9, "sources": ["a"], "targets": ["t"], "n_targets": 2, "n_holdout": 3,
             "checkpoints": 1, "checkpoint_examples": {"d4": 5}, "projection": "SJLT", "proj_dim": 4,
             "q_term": False, "k": 5, "fraction": 0.5, "reference": "d4", "retrain_repetition": 1.0,
             "projection_warning": None}  # fmt: skip
    results = pd.DataFrame({"method": ["random", "dsdm-d4"], "seeds": [1, 1]})
    text = "\n".join(report._introduction(setup, results, "95%"))
    assert (
        "Each method keeps 5 windows (50% of the pool): DsDm the examples with the largest mean datamodel weight "
        "over the target's examples (predicted to lower target loss most), Bot-DsDm the smallest, DSIR hashed "
        "n-gram importance resampling, Classifier a logistic regression target vs pool, random a uniform draw. "
        "The reference **d4** is trained from scratch" in text
    )
