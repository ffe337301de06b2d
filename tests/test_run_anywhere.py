"""The workflow runs from any working directory: with no config.yaml there, the embedded default (beside
the Snakefile) and its embedded data resolve against the workflow's own directory, and results go to the
working directory; a config.yaml in the working directory, and a user's own data paths there, win."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd
import pytest

from conftest import REPO, job_counts
from proxyscale.config import resolve_data_paths


def snakemake_in(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = ["snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd="/")


def test_relative_data_paths_resolve_in_the_working_directory_first_then_the_workflows(tmp_path):
    work, flow = tmp_path / "work", tmp_path / "flow"
    for d, name in ((work, "mine.txt"), (flow, "embedded.txt"), (flow, "mine.txt")):
        (d / "data").mkdir(parents=True, exist_ok=True)
        (d / "data" / name).write_text("x")
    config = {
        "sources": {"a": [{"path": "data/mine.txt"}, {"path": "data/embedded.txt"}, {"path": "data/none.txt"}]},
        "attribution": {"vision": {"dataset": {"images": "data/embedded.txt", "kind": "data/embedded.txt"}}},
        "test_sets": {"c4": {"path": str(tmp_path / "elsewhere.txt")}},
    }
    got = resolve_data_paths(config, flow, work)
    assert [e["path"] for e in got["sources"]["a"]] == [
        "data/mine.txt",  # the working directory's own file keeps its meaning
        str(flow / "data/embedded.txt"),  # found only beside the workflow
        "data/none.txt",  # found nowhere: left for the config checks to name
    ]
    assert got["attribution"]["vision"]["dataset"] == {
        "images": str(flow / "data/embedded.txt"),
        "kind": "data/embedded.txt",
    }
    assert got["test_sets"] == config["test_sets"]  # absolute paths as given


@pytest.mark.workflow
def test_the_default_workflow_runs_from_an_empty_directory(tmp_path):
    """No config.yaml, no data/: the embedded default plans every experiment, and a job reads the embedded
    data and writes under the working directory."""
    plan = snakemake_in(tmp_path, "-n", "--quiet", "rules")
    assert plan.returncode == 0, plan.stderr[-3000:]
    counts = job_counts(plan.stdout)
    assert counts["all"] == 1 and counts["lds"] == 1 and counts["dsdm"] == 1 and counts["correlation"] == 1
    done = snakemake_in(tmp_path, "--cores", "1", "results/testsets/lambada.parquet")
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(pd.read_parquet(tmp_path / "results/testsets/lambada.parquet")) > 0
    assert not (tmp_path / "data").exists()  # read where the workflow lives, not copied
