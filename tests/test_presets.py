"""Paper-scale presets: `snakemake -n` plans the full graph, with the job counts the README states; their
shrunk overlays (configs/smoke/) keep every rule and run end to end on local samples in the hub's
schemas; without network a preset stops with one line naming the dataset or tokenizer."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats as sps

from conftest import REPO, job_counts

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
    return int(re.findall(r"\| ([\d,]+) \|", row)[-1].replace(",", ""))


SMOKE = {
    "lm": ["configs/paper_lm.yaml", "configs/smoke/paper_lm.yaml"],
    "vision": ["configs/paper_lm.yaml", "configs/paper_vision.yaml", "configs/smoke/paper_vision.yaml"],
}


def _snakemake(workdir: Path, files: list[str], *args: str, env=None, timeout=300) -> subprocess.CompletedProcess:
    cmd = ["snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), "--configfile"]
    cmd += [str(REPO / f) for f in files] + ["--replace-workflow-config", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


@functools.cache
def _planned(files: tuple[str, ...]) -> Counter:
    """Rule -> job count of ``snakemake -n`` on the layered config ``files``, planned once per test process
    (a preset's graph takes half a minute to build); the tests that use it share an xdist group."""
    workdir = Path(tempfile.mkdtemp(prefix="preset-plan-"))
    (workdir / "data/cifar10").mkdir(parents=True)  # the vision preset's CIFAR-10 root must exist
    try:
        result = _snakemake(workdir, list(files), "-n")
    finally:
        shutil.rmtree(workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    return job_counts(result.stdout)


@pytest.mark.xdist_group("preset_plans")
@pytest.mark.parametrize("name", PRESETS)
def test_paper_preset_plans_the_full_graph(name):
    files = [str(REPO / f) for f in PRESETS[name]]
    counts = _planned(tuple(PRESETS[name]))
    config = {}
    for f in files:  # the layered preset, as Snakemake merges it
        for key, value in yaml.safe_load(open(f)).items():
            config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    runs = (len(config["distributions"]) + len(config["selection"]["distributions"])) * len(config["sizes"])
    assert counts["train"] == counts["evaluate"] == runs
    att = config["attribution"][config["attribution"]["setting"]]
    assert (
        counts["datamodel_train"]
        == len(att["sizes"]) * config["attribution"]["checkpoints"]
        + len(config["selection"]["sizes"]) * config["selection"]["checkpoints"]
    )
    assert counts["lds_subset"] == config["attribution"]["lds"]["subsets"]
    assert sum(counts.values()) == _readme_count(name)


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> Path:
    """A working directory holding the smoke overlays' samples under data/smoke (as the script writes them)."""
    from proxyscale.data.samples import write_samples

    work = tmp_path_factory.mktemp("smoke")
    write_samples(REPO / "data", work / "data/smoke")
    return work


@pytest.mark.xdist_group("preset_plans")
def test_smoke_lm_overlay_keeps_every_rule_of_the_preset(samples):
    planned = {"preset": _planned(tuple(PRESETS["configs/paper_lm.yaml"]))}
    result = _snakemake(samples, SMOKE["lm"], "-n")
    assert result.returncode == 0, result.stderr[-3000:]
    planned["smoke"] = job_counts(result.stdout)
    # the trained BPE stands in for the hub's GPT-NeoX tokenizer; nothing else changes kind
    assert set(planned["smoke"]) == set(planned["preset"]) | {"train_tokenizer"}
    assert planned["smoke"]["build_testset"] == planned["preset"]["build_testset"] == 6
    assert planned["smoke"]["prepare_source"] == planned["preset"]["prepare_source"] == 7
    assert sum(planned["smoke"].values()) < sum(planned["preset"].values()) / 2


def test_without_network_a_hub_preset_stops_with_one_line_naming_what_to_provide(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    targets = ["results/testsets/squad.parquet", "results/shards/books.npy"]
    result = _snakemake(tmp_path, PRESETS["configs/paper_lm.yaml"], "--cores", "2", "-k", *targets, env=env)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error in rule")]
    assert len(errors) == 2, result.stderr[-3000:]
    squad = next(e for e in errors if "build_testset" in e)
    assert "dataset 'rajpurkar/squad': cannot be loaded" in squad and "data_files" in squad
    books = next(e for e in errors if "prepare_source" in e)
    assert "tokenizer 'EleutherAI/gpt-neox-20b' cannot be fetched" in books and "kind: hf, path:" in books
    assert "Traceback" not in (tmp_path / "results/logs/build_testset/squad.log").read_text()


def _headline(report: str, heading: str) -> str:
    return report.split(heading, 1)[1].split("\n##", 1)[0]


@pytest.mark.smoke
def test_smoke_lm_overlay_runs_end_to_end(samples):
    result = _snakemake(samples, SMOKE["lm"], "--cores", "2", timeout=3000)
    assert result.returncode == 0, result.stderr[-3000:]
    results = samples / "results"
    for report in ("correlation/report.md", "attribution/report/report.md", "selection/report/report.md"):
        assert (results / report).stat().st_size > 1000, report
    assert (results / "tokenizer/bpe.json").exists()
    # every test set of the preset went through its hub schema and the trained tokenizer
    for test in ("c4", "pile", "squad", "lambada", "hellaswag", "triviaqa"):
        assert len(pd.read_parquet(results / f"testsets/{test}.parquet")) > 50, test
    assert not list(results.rglob("*.tmp*"))
    _recompute_headlines(results)


def _recompute_headlines(results: Path) -> None:
    """One headline figure of each experiment, recomputed from the run's own artifacts."""
    # scale correlation: R^2 across training distributions of the mean C4 losses, per proxy
    summary = pd.read_parquet(results / "correlation/summary.parquet").query("test == 'c4'").set_index("size")
    dists = sorted(p.name for p in (results / "losses").iterdir())
    assert len(dists) == 6  # the overlay keeps the preset's c4 and mixture, and its 4 selection-induced ones

    def mean_loss(d, s):
        return pd.read_parquet(results / f"losses/{d}/{s}/c4.parquet")["loss"].mean()

    for size, r2 in summary["r2"].items():
        x, y = [mean_loss(d, size) for d in dists], [mean_loss(d, "760m") for d in dists]
        assert r2 == pytest.approx(np.corrcoef(x, y)[0, 1] ** 2, abs=1e-9), size
    # attribution: LDS of the reference's datamodel against the reference retrained on the subsets
    lds = pd.read_parquet(results / "attribution/report/lds.parquet").query("configured").set_index("size")
    subsets = [np.load(p) for p in sorted((results / "attribution/lds_subsets").glob("*.npz"))]
    masks, actual = np.stack([b["mask"] for b in subsets]), np.stack([b["outputs"] for b in subsets])
    predicted = masks.astype(np.float32) @ np.load(results / "attribution/datamodels/760m.npy")
    per_target = [sps.spearmanr(predicted[:, j], actual[:, j]).statistic for j in range(actual.shape[1])]
    assert lds.loc["760m", "lds"] == pytest.approx(np.nanmean(per_target), abs=1e-9)
    # selection: the holdout loss of the reference retrained on its DsDm selection for LAMBADA
    results_table = pd.read_parquet(results / "selection/report/results.parquet").query("target == 'lambada'")
    # (retrain_seeds seeds, and the seeds up to noise_seeds in retrain_noise/)
    runs = [results / f"selection/{d}/lambada/dsdm-760m.parquet" for d in ("retrain", "retrain_noise")]
    retrained = pd.concat([pd.read_parquet(r) for r in runs], ignore_index=True)
    assert retrained["seed"].nunique() == 2
    own = retrained[retrained["holdout_task"] == "lambada"].groupby("example_id")["loss"].mean().mean()
    assert results_table.set_index("method").loc["dsdm-760m", "loss"] == pytest.approx(own, rel=1e-9)


@pytest.mark.smoke
def test_smoke_vision_overlay_runs_resnet18_on_cifar_format_batches(samples, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data/smoke").symlink_to(samples / "data/smoke")
    result = _snakemake(tmp_path, SMOKE["vision"], "--cores", "2", "lds_report", timeout=3000)
    assert result.returncode == 0, result.stderr[-3000:]
    report = (tmp_path / "results/attribution/report/report.md").read_text()
    assert "k1_16" in report and "k1_8" in report and "resnet18" in report


def test_datadecide_preset_plans_every_released_model_without_training(tmp_path):
    """configs/datadecide.yaml: DataDecide's 25 corpora x 14 sizes, each imported from the hub at its final
    default-seed checkpoint (revision main) in hf_olmo format; the plan converts and evaluates every model
    and trains none."""
    config = yaml.safe_load((REPO / "configs/datadecide.yaml").read_text())
    sizes = ["4M", "6M", "8M", "10M", "14M", "16M", "20M", "60M", "90M", "150M", "300M", "530M", "750M", "1B"]
    assert list(config["models"]) == sizes and config["reference"] == "1B"
    for size, spec in config["models"].items():
        assert len(spec["checkpoints"]) == 25 and spec["format"] == "hf_olmo" and "modules" not in spec
        nominal = int(size[:-1]) * (10**6 if size.endswith("M") else 10**9)
        assert spec["tokens"] == 100 * nominal  # the suite's 100 tokens per parameter
        for dist, entry in spec["checkpoints"].items():
            assert entry == {"hub": f"allenai/DataDecide-{entry['hub'].split('-', 1)[1].rsplit('-', 1)[0]}-{size}",
                             "revision": "main"}  # fmt: skip
            assert entry["hub"].split("-", 1)[1].rsplit("-", 1)[0].replace(".", "_") == dist
    assert {d for spec in config["models"].values() for d in spec["checkpoints"]} == set(
        config["models"]["1B"]["checkpoints"]
    )
    result = _snakemake(tmp_path, ["configs/datadecide.yaml"], "-n")
    assert result.returncode == 0, result.stderr[-3000:]
    counts = job_counts(result.stdout)
    assert counts == Counter(convert_imported=350, evaluate_imported=350, build_testset=6, correlation=1, all=1)
    assert sum(counts.values()) == _readme_count("configs/datadecide.yaml")
