"""Shared fixtures: the repository root, its embedded data, and a tiny workflow config."""

from __future__ import annotations

import os
import re
import subprocess
from collections import Counter
from pathlib import Path

# One thread per process, in this test process and the ones it starts: pytest-xdist (scripts/test) runs a
# worker per core beside the workflows the tests start, so a second OpenMP or OpenBLAS thread oversubscribes
# the cores and the threads spin waiting for each other (a tiny model trained ten times slower under the
# suite than alone). Set before numpy and torch load, which size their pools then; a workflow job still
# sets torch to its rule's threads (proxyscale.runner.limit_threads).
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import pytest  # noqa: E402
import yaml  # noqa: E402
from cpu_durations import (  # noqa: E402,F401 (the hooks of --cpu-durations)
    pytest_addoption,
    pytest_runtest_logreport,
    pytest_runtest_makereport,
    pytest_runtest_setup,
    pytest_terminal_summary,
)

from proxyscale.config import DATA_KEYS  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data"
CONFIGS = REPO / "tests" / "configs"

# The embedded MNIST as the vision attribution setting of the library tests (a ConvNet on 14x14 digits).
MNIST = {
    "dataset": {
        "kind": "mnist",
        "images": str(DATA / "vision/t10k-images-idx3-ubyte.gz"),
        "labels": str(DATA / "vision/t10k-labels-idx1-ubyte.gz"),
    },
    "downsample": 2,
    "family": "convnet",
}


REQUIRED = {x for x in os.environ.get("PROXYSCALE_REQUIRE", "").split(",") if x}
"""What must be available (``slurm``, ``datasets``, ``transformers``, ``lm_eval``): CI names them all, so a
test that would skip for want of one of them fails instead."""


def unavailable(what: str, reason: str) -> None:
    """Skip the calling test for ``reason``, or fail it when ``what`` is in PROXYSCALE_REQUIRE."""
    if what in REQUIRED:
        pytest.fail(f"PROXYSCALE_REQUIRE names {what}, but {reason}")
    pytest.skip(reason)


def needs_datasets() -> None:
    """Skip (or, when required, fail) a test of the Hugging Face loaders where ``datasets`` is missing."""
    try:
        import datasets  # noqa: F401
    except ImportError:
        unavailable("datasets", "the datasets package is not installed")


def needs_transformers() -> None:
    """Skip (or, when required, fail) a test of imported checkpoints where ``transformers`` is missing."""
    try:
        import transformers  # noqa: F401
    except ImportError:
        unavailable("transformers", "the transformers package is not installed")


def needs_lm_eval() -> None:
    """Skip (or, when required, fail) a test of lm-evaluation-harness on exported models where it is missing."""
    try:
        import accelerate  # noqa: F401 (lm_eval's hf model needs it: the lm_eval[hf] extra)
        import lm_eval  # noqa: F401
    except ImportError:
        unavailable("lm_eval", "lm-evaluation-harness (lm_eval[hf]) is not installed")


def windows_dataset(directory: Path, arrays: dict, **task):
    """A language dataset directory built from ``arrays`` by hand: ``train_inputs`` (windows) go to a token
    shard the dataset reads them from, the other arrays are stored; ``task`` adds to the spec."""
    import numpy as np

    from proxyscale.datamodels.dataset import load_dataset, save_dataset, shard_spec

    pool = np.asarray(arrays["train_inputs"])
    shard = directory / "shard.npy"
    np.save(shard, pool.reshape(-1).astype(np.uint16))
    spec = {"setting": "lm", "vocab_size": 20, "context_length": pool.shape[1] - 1, **task}
    spec["windows"] = shard_spec([shard], pool.shape[1])
    parts = {k: v for k, v in arrays.items() if not k.startswith("train_")}
    save_dataset({**parts, "train_origin": np.arange(len(pool)) * pool.shape[1]}, spec, directory / "dataset")
    return load_dataset(directory / "dataset")


def absolute_paths(node, root: Path):
    """``node`` with every data path (keys ``path``, ``images``, ``labels``, ``root``) made absolute under ``root``."""
    if isinstance(node, dict):
        return {
            k: str(root / v) if k in DATA_KEYS and isinstance(v, str) else absolute_paths(v, root)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [absolute_paths(v, root) for v in node]
    return node


def load_config(name: str) -> dict:
    """``tests/configs/<name>.yaml`` with absolute data paths, so it runs in any working directory."""
    return absolute_paths(yaml.safe_load((CONFIGS / f"{name}.yaml").read_text()), REPO)


def tiny_config() -> dict:
    """A workflow config small enough for a ~1 minute end-to-end run on 2 cores (absolute data paths)."""
    return load_config("tiny")


def validated(config: dict) -> dict:
    """``config`` with the schema's defaults filled in, as the workflow sees it."""
    from snakemake.utils import validate

    validate(config, str(REPO / "schemas/config.schema.yaml"))
    return config


def run_snakemake(workdir: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Snakemake on this repository's workflow in ``workdir``, with the ``config.yaml`` written there
    (``env``: the environment, default this process's)."""
    cmd = ["snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir)]
    cmd += ["--configfile", str(workdir / "config.yaml"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)


def job_counts(output: str) -> Counter:
    """Rule -> planned job count, from the 'Job stats' table of a (dry) run."""
    table = output.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    return Counter({m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m[1] != "total"})


def write_config(config: dict, directory: Path) -> Path:
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture
def tiny(tmp_path) -> tuple[dict, Path]:
    return tiny_config(), tmp_path


SHARED_RUNS = ("tiny_run", "uninterrupted")
"""Fixtures holding a finished workflow run (session- or module-scoped): the tests that read one share a
pytest-xdist group, so under ``-n N --dist loadgroup`` (scripts/test) one worker makes the run once and runs
them all, and two workers never run Snakemake in the same directory at once (the second would find it
locked)."""


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups into the test ids
def pytest_collection_modifyitems(config, items):
    """Put every test that reads a shared run (:data:`SHARED_RUNS`) in that run's xdist group."""
    for item in items:
        for run in SHARED_RUNS:
            if run in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.xdist_group(run))


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """The working directory of one end-to-end run of the tiny config (its console output in console.txt),
    shared by every test module that reads a finished run: a test that changes a run works on a copy."""
    work = tmp_path_factory.mktemp("tiny")
    write_config(tiny_config(), work)
    result = run_snakemake(work, "--cores", "2")
    assert result.returncode == 0, result.stderr[-5000:]
    (work / "console.txt").write_text(result.stderr)
    return work
