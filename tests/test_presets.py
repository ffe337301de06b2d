"""Paper-scale presets: `snakemake -n` plans the full graph, with the job counts the README states."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml
from test_workflow import job_counts

from conftest import REPO

pytestmark = pytest.mark.workflow

PRESETS = {
    "configs/paper_lm.yaml": ["configs/paper_lm.yaml"],
    "configs/paper_lm.yaml + configs/paper_vision.yaml": ["configs/paper_lm.yaml", "configs/paper_vision.yaml"],
}


def _readme_count(name: str) -> int:
    row = next(
        line
        for line in (REPO / "README.md").read_text().splitlines()
        if line.startswith(f"| `{name.split(' + ')[-1]}`")
    )
    return int(re.findall(r"\| (\d+) \|", row)[-1])


@pytest.mark.parametrize("name", PRESETS)
def test_paper_preset_plans_the_full_graph(tmp_path, name):
    (tmp_path / "data/cifar10").mkdir(parents=True)  # the vision preset's CIFAR-10 root must exist
    files = [str(REPO / f) for f in PRESETS[name]]
    cmd = [
        "snakemake",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(tmp_path),
        "--configfile",
        *files,
        "--replace-workflow-config",
        "-n",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    counts = job_counts(result.stdout)
    config = {}
    for f in files:  # the layered preset, as Snakemake merges it
        for key, value in yaml.safe_load(open(f)).items():
            config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    runs = (len(config["distributions"]) + len(config["selection"]["distributions"])) * len(config["sizes"])
    assert counts["train"] == counts["evaluate"] == runs
    att = config["attribution"][config["attribution"]["setting"]]
    assert (
        counts["attribution_train"]
        == len(att["sizes"]) * config["attribution"]["checkpoints"]
        + len(config["selection"]["sizes"]) * config["selection"]["checkpoints"]
    )
    assert counts["lds_subset"] == config["attribution"]["lds"]["subsets"]
    assert sum(counts.values()) == _readme_count(name)
