"""Shared fixtures: the repository root, its embedded data, and a tiny workflow config."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data"


def tiny_config() -> dict:
    """A workflow config small enough for a ~1 minute end-to-end run on 2 cores (absolute data paths)."""
    d = DATA
    return {
        "seed": 0,
        "device": "cpu",
        "sources": {
            "books": [{"path": str(d / "train/books_pg1661_sherlock_holmes.txt.xz"), "format": "gutenberg"}],
            "wiki": [{"path": str(d / "train/wiki_wikitext2_raw_test.txt.xz"), "format": "wikitext"}],
            "web": [{"path": str(d / "train/web_openwebtext_1000.jsonl.xz"), "format": "jsonl"}],
        },
        "distributions": {
            "books": {"books": 1},
            "wiki": {"wiki": 1},
            "web": {"web": 1},
            "mixture": {"books": 1, "wiki": 1, "web": 1},
        },
        "test_sets": {
            "c4": {"format": "c4", "path": str(d / "test/c4_en_1000.jsonl.xz")},
            "pile": {"format": "pile"},
            "lambada": {"format": "lambada", "path": str(d / "test/lambada_openai_test.jsonl.xz")},
            "hellaswag": {"format": "hellaswag", "path": str(d / "test/hellaswag_val_2000.txt.bz2")},
        },
        "evaluation": {"max_examples": 20, "max_chars": 256, "batch_size": 32},
        "model": {"context_length": 32, "tokens_per_param": 2},
        "sizes": {
            "tiny": {"d_model": 8, "n_layers": 1, "n_heads": 2, "batch_size": 8, "lr": 0.01},
            "ref": {"d_model": 16, "n_layers": 1, "n_heads": 4, "batch_size": 8, "lr": 0.01},
        },
        "reference": "ref",
        "report": {"bootstrap": 20, "per_sample_panels": 2},
        "attribution": {
            "setting": "vision",
            "vision": {
                "dataset": {"kind": "mnist", "images": str(d / "vision/t10k-images-idx3-ubyte.gz"), "labels": str(d / "vision/t10k-labels-idx1-ubyte.gz")},
                "downsample": 2,
                "family": "convnet",
                "epochs": 2,
                "sizes": {"w2": {"width": 2, "batch_size": 20, "lr": 0.01}, "w4": {"width": 4, "batch_size": 20, "lr": 0.01}},
                "reference": "w4",
            },
            "lm": {
                "distribution": "mixture",
                "targets": "c4",
                "context_length": 16,
                "epochs": 1,
                "sizes": {"d4": {"d_model": 4, "n_layers": 1, "n_heads": 2, "batch_size": 10, "lr": 0.01}, "d8": {"d_model": 8, "n_layers": 1, "n_heads": 2, "batch_size": 10, "lr": 0.01}},
                "reference": "d8",
            },
            "n_train": 100,
            "n_targets": 10,
            "checkpoints": 2,
            "trak": {"proj_dim": 32, "batch_size": 50},
            "lds": {"subsets": 4},
            "report": {"top_k": 3, "examples_shown": 2},
        },
        "selection": {
            "pool": {"distributions": ["mixture"], "size": 120},
            "targets": ["lambada"],
            "n_targets": 8,
            "n_holdout": 12,
            "context_length": 16,
            "epochs": 1,
            "sizes": {"d4": {"d_model": 4, "n_layers": 1, "n_heads": 2, "batch_size": 10, "lr": 0.01}, "d8": {"d_model": 8, "n_layers": 1, "n_heads": 2, "batch_size": 10, "lr": 0.01}},
            "reference": "d8",
            "checkpoints": 2,
            "trak": {"proj_dim": 32, "batch_size": 60},
            "fraction": 0.25,
            "ngram_buckets": 256,
            "retrain_seeds": 1,
            "distributions": ["lambada/dsdm-d8"],  # trained on by the correlation experiment too
        },
    }


def validated(config: dict) -> dict:
    """``config`` with the schema's defaults filled in, as the workflow sees it."""
    from snakemake.utils import validate

    validate(config, str(REPO / "schemas/config.schema.yaml"))
    return config


def write_config(config: dict, directory: Path) -> Path:
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture
def tiny(tmp_path) -> tuple[dict, Path]:
    return tiny_config(), tmp_path
