"""The Snakemake graph: dry runs, clear config errors, a tiny end-to-end run, incremental re-runs."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.stats import spearmanr

from conftest import REPO, job_counts, run_snakemake, tiny_config, write_config
from proxyscale.config import size_seeds
from proxyscale.correlation.decisions import PROBIT_MODEL
from proxyscale.models.vision import forward_macs, make_classifier
from proxyscale.training.checkpoints import checkpoint_meta

pytestmark = pytest.mark.workflow


def planned_wildcards(output: str, rule: str) -> list[str]:
    """The 'wildcards:' line of every planned job of ``rule``."""
    found, current = [], None
    for line in output.splitlines():
        if m := re.match(r"(?:local)?rule (\w+):", line):
            current = m[1]
        elif current == rule and (m := re.match(r"\s+wildcards: (.*)", line)):
            found.append(m[1])
    return found


def default_workdir(tmp_path: Path) -> Path:
    (tmp_path / "data").symlink_to(REPO / "data")
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    return tmp_path


def test_default_graph_plans_every_experiment(tmp_path):
    """The default is the paper's design: BPE tokens, the sources and the mixture plus 4 selection-induced
    distributions (DsDm on both targets, DSIR and the classifier), each trained at every size."""
    work = default_workdir(tmp_path)
    result = run_snakemake(work, "-n", "correlation_report")
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    sel = config["selection"]
    induced = sel["distributions"]
    runs = (len(config["distributions"]) + len(induced)) * len(config["sizes"])
    replicates = (len(config["distributions"]) + len(induced)) * sum(n - 1 for n in size_seeds(config).values())
    assert config["tokenizer"]["kind"] == "bpe" and len(config["sources"]) >= 6 and "mixture" in config["distributions"]
    assert len(config["distributions"]) + len(induced) >= 11
    assert len(config["test_sets"]) >= 6 and len(config["sizes"]) >= 4
    methods = {d.split("/")[1].split("-")[0] for d in induced}
    assert len(induced) == 4 and methods == {"dsdm", "dsir", "classifier"}
    assert {d.split("/")[0] for d in induced if "dsdm" in d} == set(sel["targets"])  # DsDm for both targets
    dsdm_sizes = {d.split("-", 1)[1] for d in induced if "/dsdm-" in d}
    assert job_counts(result.stdout) == Counter(
        prepare_source=len(config["sources"]),
        train_tokenizer=1,
        build_testset=len(config["test_sets"]),
        train=runs,
        evaluate=runs,
        train_replicate=replicates,  # the seeds beyond the first (seeds:)
        evaluate_replicate=replicates,
        selection_split=len(sel["targets"]),  # their DsDm target parts stay out of evaluation
        selection_data=1,
        datamodel_train=len(dsdm_sizes) * sel["checkpoints"],  # the datamodels the DsDm selections need
        trak_featurize=len(dsdm_sizes) * sel["checkpoints"],  # one shard each by default
        trak=len(dsdm_sizes) * sel["checkpoints"],
        datamodel=len(dsdm_sizes),
        select=len(induced),
        selection_shard=len(induced),
        correlation=1,
        correlation_report=1,
    )


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda c: c["model"].update(tokens_per_param=-5),
            r"model.tokens_per_param: -5 is out of range \(must be > 0\)",
        ),
        (lambda c: c.update(reference="huge"), "reference: size 'huge' is not defined under sizes"),
        (
            lambda c: c["sources"]["wiki"][0].update(path="nowhere/wiki.txt"),
            r"sources.wiki\[0\].path: file 'nowhere/wiki.txt' does not exist",
        ),
        (lambda c: c["sizes"]["tiny"].update(d_model="big"), "sizes.tiny.d_model: 'big' is not an integer"),
        (lambda c: c["selection"].update(targets=["squad"]), "selection.targets: 'squad' is not a test set"),
        (lambda c: c["selection"].update(methods=["dsdm", "magic"]), r"selection.methods\[1\]: 'magic' must be one of"),
    ],
)
def test_bad_config_fails_with_a_message_naming_the_key(tmp_path, edit, message):
    config = copy.deepcopy(tiny_config())
    edit(config)
    write_config(config, tmp_path)
    result = run_snakemake(tmp_path, "-n")
    assert result.returncode != 0
    assert re.search(message, result.stdout + result.stderr), result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_bad_input_file_fails_with_a_clear_message(tmp_path):
    bad = tmp_path / "c4.jsonl"
    bad.write_text('{"text": "fine"}\nthis is not json\n')
    config = tiny_config()
    config["test_sets"] = {"c4": {"format": "c4", "path": str(bad)}}
    config["selection"].update(targets=["c4"], distributions=[])
    write_config(config, tmp_path)
    result = run_snakemake(tmp_path, "--cores", "1", "results/testsets/c4.parquet")
    assert result.returncode != 0
    assert f"error in rule build_testset: {bad}:2: not valid JSON" in result.stderr
    assert not (tmp_path / "results/testsets/c4.parquet").exists()


def test_diverging_training_is_one_line_on_the_console_and_in_the_job_log(tmp_path):
    config = tiny_config()
    config["sizes"]["tiny"]["lr"] = 1.0e6
    write_config(config, tmp_path)
    result = run_snakemake(tmp_path, "--cores", "1", "results/checkpoints/books/tiny.pt")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    log = tmp_path / "results/logs/train/books/tiny.log"
    line = re.search(
        r"error in rule train: books/tiny step \d+: loss became (nan|inf) at learning rate .*", result.stderr
    )
    assert line and f"(log: {log.relative_to(tmp_path)})" in line[0]
    assert log.read_text().splitlines()[-1] == line[0].split(" (log: ")[0]
    assert not (tmp_path / "results/checkpoints/books/tiny.pt").exists()


def test_a_run_ends_with_what_it_found(tiny_run):
    """The onsuccess summary: every report made, its headline read from its tables, and where to look."""
    console = (tiny_run / "console.txt").read_text()
    summary = console.split("What this run found:\n", 1)[1].splitlines()
    assert summary[0] == "correlation: results/correlation/report.md"
    assert summary[1].startswith("  largest proxy tiny (") and "R^2" in summary[1]
    assert summary[3] == "attribution: results/attribution/report/report.md"
    assert summary[4].startswith("  LDS without Q, reference first: w4 ")
    assert summary[5] == "selection: results/selection/report/report.md"
    assert summary[6].startswith("  lambada: DsDm holdout loss minus random's (below 0: DsDm helps): dsdm-d8 ")
    front = "The run in one HTML page (its reports, every figure captioned): snakemake --report results/report.html"
    assert front in summary[7:9]


def test_tiny_end_to_end_run_produces_the_report(tiny_run):
    out = tiny_run / "results/correlation"
    report = (out / "report.md").read_text()
    assert "## R^2 of reference on proxy mean loss" in report and "tiny (" in report
    summary = pd.read_parquet(out / "summary.parquet")
    assert sorted(summary["test"]) == ["c4", "hellaswag", "lambada", "pile"]
    assert set(summary["size"]) == {"tiny"}
    # lambada's examples that DsDm selects with (and any sharing their passage) are left out
    testset = pd.read_parquet(tiny_run / "results/testsets/lambada.parquet")
    split = pd.read_parquet(tiny_run / "results/selection/splits/lambada.parquet")
    reserved = set(testset.loc[testset["passage"].isin(split.query("part == 'target'")["passage"]), "example_id"])
    assert len(reserved) >= 8 and not set(split.query("part == 'holdout'")["example_id"]) & reserved
    per_sample = pd.read_parquet(out / "per_sample_r2.parquet").query("test == 'lambada'")
    assert not set(per_sample["example_id"]) & reserved and len(per_sample) == testset["example_id"].nunique() - 8
    # the summary's R^2 is that of the mean per-sample losses the evaluate jobs wrote, recomputed here
    dists = ["books", "web", "wiki", "mixture", "lambada-dsdm-d8"]
    for test, r2 in zip(summary["test"], summary["r2"]):
        mean = {}
        for d in dists:
            for s in ("tiny", "ref"):
                losses = pd.read_parquet(tiny_run / f"results/losses/{d}/{s}/{test}.parquet")
                kept = losses if test != "lambada" else losses[~losses["example_id"].isin(reserved)]
                mean[d, s] = kept["loss"].mean()
        x, y = [mean[d, "tiny"] for d in dists], [mean[d, "ref"] for d in dists]
        assert r2 == pytest.approx(np.corrcoef(x, y)[0, 1] ** 2, abs=1e-9)
    compute = pd.read_parquet(out / "compute.parquet").set_index("size")
    assert compute.loc["ref", "compute_ratio"] == 1 and compute.loc["tiny", "compute_ratio"] > 1
    for fig in (
        "fig1_scatter",
        "fig2_r2_vs_compute",
        "fig3_r2_vs_accuracy",
        "fig4_per_sample",
        "fig5_per_sample_r2",
        "fig6_reliability",
        "training_curves",
    ):
        assert (out / f"{fig}.png").stat().st_size > 1000 and (out / f"{fig}.svg").exists()
        assert f"{fig}.png" in report
    decisions = pd.read_parquet(out / "decisions.parquet")  # 4 test sets x 10 pairs of 5 distributions
    assert len(decisions) == 40 and (decisions["model"] == PROBIT_MODEL).all()
    assert decisions["probability"].dropna().between(0, 1).all()
    assert pd.read_parquet(out / "reliability.parquet")["count"].sum() == decisions["held"].notna().sum()
    assert "## How likely each decision is to hold" in report
    losses = pd.read_parquet(tiny_run / "results/losses/mixture/ref/hellaswag.parquet")
    assert len(losses) == 20 and losses["correct"].isin([0.0, 1.0]).all()
    assert (tiny_run / "results/logs/train/web/tiny.log").read_text().count("done in") == 1
    assert not list((tiny_run / "results").rglob("*.tmp*"))


def test_nothing_to_do_after_a_complete_run(tiny_run):
    result = run_snakemake(tiny_run, "-n")
    assert result.returncode == 0 and "Nothing to be done" in result.stdout + result.stderr
    result = run_snakemake(tiny_run, "--cores", "1")  # a real run that makes nothing says nothing more
    assert result.returncode == 0 and "What this run found" not in result.stdout + result.stderr


def test_editing_one_size_reruns_only_that_size_and_the_report(tiny_run, tmp_path):
    config = tiny_config()
    config["sizes"]["tiny"]["d_model"] = 12
    write_config(config, tmp_path)
    result = run_snakemake(tiny_run, "-n", "--configfile", str(tmp_path / "config.yaml"))
    assert result.returncode == 0, result.stderr
    n = len(config["distributions"]) + len(config["selection"]["distributions"])
    assert job_counts(result.stdout) == Counter(train=n, evaluate=n, correlation=1, all=1)
    for rule in ("train", "evaluate"):
        wildcards = planned_wildcards(result.stdout, rule)
        assert len(wildcards) == n and all(w.endswith("size=tiny") for w in wildcards)


def test_a_run_finished_before_the_decision_tables_existed_remakes_only_the_report(tiny_run, tmp_path):
    """Such a run has neither the tables nor Snakemake's record of them; the default target and
    correlation_report ask for them, so the report job runs again (and nothing else)."""
    work = tmp_path / "run"
    shutil.copytree(tiny_run, work, symlinks=True)
    tables = [f"results/correlation/{name}.parquet" for name in ("decisions", "reliability", "safe_decisions")]
    for table in tables:
        (work / table).unlink()
    forget = run_snakemake(work, "--cleanup-metadata", *tables)
    assert forget.returncode == 0, forget.stderr
    for target in ("all", "correlation_report"):
        result = run_snakemake(work, "-n", target)
        assert result.returncode == 0, result.stderr
        assert job_counts(result.stdout) == Counter({"correlation": 1, target: 1}), target


def test_default_graph_plans_the_attribution_experiment(tmp_path):
    work = default_workdir(tmp_path)
    result = run_snakemake(work, "-n", "lds_report")
    assert result.returncode == 0, result.stderr
    att = yaml.safe_load((REPO / "config.yaml").read_text())["attribution"]
    sizes, M, m = len(att["vision"]["sizes"]), att["checkpoints"], att["lds"]["subsets"]
    assert sizes >= 4 and M >= 2
    shape = (1, 28 // att["vision"]["downsample"], 28 // att["vision"]["downsample"])
    macs = {
        name: forward_macs(make_classifier(att["vision"]["family"], spec["width"], 1, 10, shape[1]), shape)
        for name, spec in att["vision"]["sizes"].items()
    }
    assert macs[att["vision"]["reference"]] >= 1000 * min(macs.values())  # the paper's range: LDS past 1,000x
    per_ckpt = sizes * M
    assert job_counts(result.stdout) == Counter(
        attribution_data=1,
        datamodel_train=per_ckpt,
        trak_featurize=per_ckpt,
        trak=per_ckpt,
        datamodel=sizes,
        lds_subset=m,
        lds=1,
        lds_report=1,
    )


def test_language_attribution_setting_plans_from_the_text_shards(tmp_path):
    config = tiny_config()
    config["attribution"]["setting"] = "lm"
    write_config(config, tmp_path)
    result = run_snakemake(tmp_path, "-n", "lds_report")
    assert result.returncode == 0, result.stderr
    counts = job_counts(result.stdout)
    assert counts["datamodel_train"] == 4 and counts["lds_subset"] == 4
    assert counts["prepare_source"] == 3 and counts["build_testset"] >= 1  # the mixture's shards and c4


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda a: a["vision"].update(reference="w99"), "attribution.vision.reference: size 'w99' is not defined"),
        (
            lambda a: a["vision"]["dataset"].update(images="nowhere.gz"),
            "attribution.vision.dataset.images: 'nowhere.gz' does not exist",
        ),
        (
            lambda a: a.update(setting="lm") or a["lm"].update(distribution="nope"),
            "attribution.lm.distribution: 'nope' is not a distribution",
        ),
        (lambda a: a["lds"].update(alpha=1.5), r"attribution.lds.alpha: 1.5 is out of range \(must be > 0 and < 1\)"),
    ],
)
def test_bad_attribution_config_fails_with_a_message_naming_the_key(tmp_path, edit, message):
    config = tiny_config()
    edit(config["attribution"])
    write_config(config, tmp_path)
    result = run_snakemake(tmp_path, "-n", "lds_report")
    assert result.returncode != 0
    assert re.search(message, result.stdout + result.stderr), result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_tiny_run_produces_the_lds_report(tiny_run):
    out = tiny_run / "results/attribution/report"
    report = (out / "report.md").read_text()
    assert "## LDS against compute (Figure 6)" in report
    assert "| LDS without Q (configured) [95% CI] | LDS with Q [95% CI] |" in report
    assert "w2 without Q (configured) | w2 with Q |" in report  # the LDS-vs-checkpoints table
    both = pd.read_parquet(out / "lds.parquet")
    assert len(both) == 4 and (both["configured"] == ~both["q_term"]).all()
    lds = both[both["configured"]].set_index("size")
    assert set(lds.index) == {"w2", "w4"}
    # LDS recomputed from the datamodel files and the reference's outputs on the LDS subsets
    subsets = [np.load(p) for p in sorted((tiny_run / "results/attribution/lds_subsets").glob("*.npz"))]
    masks, actual = np.stack([b["mask"] for b in subsets]), np.stack([b["outputs"] for b in subsets])

    def lds_of(tau):
        predicted = masks.astype(np.float32) @ tau
        return np.nanmean([spearmanr(predicted[:, j], actual[:, j]).statistic for j in range(actual.shape[1])])

    with_q = both[both["q_term"]].set_index("size")
    for size in ("w2", "w4"):
        assert lds.loc[size, "lds"] == pytest.approx(
            lds_of(np.load(tiny_run / f"results/attribution/datamodels/{size}.npy")), abs=1e-9
        )
        # the other variant: the checkpoints' scores averaged, each training example's row times its mean Q
        scores = [np.load(tiny_run / f"results/attribution/scores/{size}/{c}.npy") for c in (0, 1)]
        qs = [np.load(tiny_run / f"results/attribution/trak/{size}/{c}/q.npy") for c in (0, 1)]
        tau_q = np.mean(scores, 0) * np.mean(qs, 0)[:, None]
        assert with_q.loc[size, "lds"] == pytest.approx(lds_of(tau_q), abs=1e-6)
    assert lds.loc["w4", "compute_ratio"] == 1 and lds.loc["w2", "compute_ratio"] > 1
    by_m = pd.read_parquet(out / "lds_vs_checkpoints.parquet")
    assert sorted(by_m["checkpoints"].unique()) == [1, 2] and set(by_m["q_term"]) == {False, True}
    # tiny's projection size, 32, is 32% of its 100 training examples: the report warns
    assert "**Warning:** attribution.trak.proj_dim 32 is 32.0% of the 100 training examples" in report
    for fig in (
        "fig6_lds_vs_compute",
        "lds_vs_checkpoints",
        "fig7_top_k_overlap",
        "rank_correlation",
        "top_k_examples",
    ):
        assert (out / f"{fig}.png").stat().st_size > 1000 and (out / f"{fig}.svg").exists()
        assert f"{fig}.png" in report
    assert (tiny_run / "results/attribution/trak/w2/0/proxyscale.json").is_file()
    assert not (tiny_run / "results/attribution/trak_work").exists()  # every work directory finished and went


def _dry_run_with(tiny_run, tmp_path, edit) -> Counter:
    config = tiny_config()
    edit(config)
    write_config(config, tmp_path)
    result = run_snakemake(tiny_run, "-n", "--configfile", str(tmp_path / "config.yaml"))
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_adding_one_lds_subset_plans_only_that_subset_and_the_reports(tiny_run, tmp_path):
    out = _dry_run_with(tiny_run, tmp_path, lambda c: c["attribution"]["lds"].update(subsets=5))
    assert job_counts(out) == Counter(lds_subset=1, lds=1, all=1)
    assert planned_wildcards(out, "lds_subset") == ["subset=4"]


def test_toggling_the_q_term_recomputes_datamodels_only(tiny_run, tmp_path):
    out = _dry_run_with(tiny_run, tmp_path, lambda c: c["attribution"]["trak"].update(q_term=True))
    assert job_counts(out) == Counter(datamodel=2, lds=1, all=1)


def test_editing_one_attribution_size_reruns_only_its_checkpoints(tiny_run, tmp_path):
    out = _dry_run_with(tiny_run, tmp_path, lambda c: c["attribution"]["vision"]["sizes"]["w2"].update(lr=0.02))
    assert job_counts(out) == Counter(datamodel_train=2, trak_featurize=2, trak=2, datamodel=1, lds=1, all=1)
    assert all(w.startswith("exp=attribution, size=w2") for w in planned_wildcards(out, "trak"))


def test_the_projected_gradients_are_gone_once_scored_and_nothing_refeaturizes(tiny_run):
    """trak.keep_gradients false (the default): each shard's projected gradients are temporary, deleted
    once its checkpoint is scored; the small store (summary and Q) and the scores stay, and a rerun of the
    reports plans nothing, featurizing least of all."""
    assert not list((tiny_run / "results").rglob("grads.npy"))
    assert (tiny_run / "results/attribution/trak/w2/1/q.npy").is_file()
    summary = json.loads((tiny_run / "results/attribution/trak/w2/1/proxyscale.json").read_text())
    assert [s["rows"] for s in summary["shards"]] == [[0, 100]]
    result = run_snakemake(tiny_run, "-n", "lds_report", "dsdm_report")
    assert result.returncode == 0 and "Nothing to be done" in result.stdout + result.stderr, result.stdout


def test_a_lost_shard_is_featurized_again_alone_and_the_scores_do_not_change(tiny_run, tmp_path):
    """A checkpoint featurized in 3 jobs (its gradients kept): with one shard's output and the scores gone
    (as after that shard's job failed), the rerun plans that shard and the gather alone, and the scores
    it writes are the ones the single-shard run wrote, within float32 rounding."""
    work = tmp_path / "work"
    shutil.copytree(tiny_run, work, symlinks=True)
    config = tiny_config()
    config["attribution"]["trak"].update(shards=3, keep_gradients=True)
    write_config(config, work)
    scores = "results/attribution/scores/w2/0.npy"
    single = np.load(work / scores)
    assert run_snakemake(work, "--cores", "2", scores).returncode == 0
    shards = work / "results/attribution/trak_shards/w2/0"
    assert sorted(p.name for p in shards.iterdir()) == ["0-of-3", "1-of-3", "2-of-3"]
    np.testing.assert_allclose(np.load(work / scores), single, rtol=1e-4, atol=1e-5 * np.abs(single).max())
    shutil.rmtree(shards / "1-of-3")
    (work / scores).unlink()
    result = run_snakemake(work, "-n", scores)
    assert job_counts(result.stdout) == Counter(trak_featurize_kept=1, trak=1)  # the rule that keeps them
    assert planned_wildcards(result.stdout, "trak_featurize_kept") == [
        "exp=attribution, size=w2, model_id=0, shard=1-of-3"
    ]


def test_more_shards_featurize_every_checkpoint_again_in_that_many_jobs(tiny_run, tmp_path):
    """trak.shards: 3 gives each attribution checkpoint 3 featurizing jobs, each asking for one GPU at most
    whatever training asks for; nothing is trained again."""

    def edit(c):
        c["attribution"]["trak"]["shards"] = 3
        c["resources"] = {"datamodels": {"gpu": 8, "processes": 8}}

    out = _dry_run_with(tiny_run, tmp_path, edit)
    counts = job_counts(out)
    assert counts["trak_featurize"] == 3 * 4 and counts["trak"] == 4 and "datamodel_train" not in counts
    shards = {re.search(r"shard=([\w-]+)", w)[1] for w in planned_wildcards(out, "trak_featurize")}
    assert shards == {"0-of-3", "1-of-3", "2-of-3"}
    asked = re.findall(r"rule trak_featurize:.*?resources: ([^\n]*)", out, re.S)
    assert len(asked) == 12 and all(", gpu=1," in r for r in asked), asked


@pytest.mark.parametrize("overlay", ["cpu_1m", "mnist_logreg", "mnist_mlp"])
def test_an_attribution_overlay_plans_exactly_its_own_sizes(tmp_path, overlay):
    """Overlays layered on config.yaml drop the default's sizes; one that drops a size it defines again
    (the default's h64 and mnist_mlp's) would silently lose it."""
    work = default_workdir(tmp_path)
    path = REPO / f"configs/{overlay}.yaml"
    result = run_snakemake(work, "-n", "lds_report", "--configfile", str(work / "config.yaml"), str(path))
    assert result.returncode == 0, result.stderr
    sizes = yaml.safe_load(path.read_text())["attribution"]["vision"]["sizes"]
    planned = {re.search(r"size=(\w+)", w)[1] for w in planned_wildcards(result.stdout, "datamodel")}
    assert planned == set(sizes)


def test_the_million_parameter_attribution_config_plans_sjlt_at_k_2048(tmp_path):
    """configs/cpu_1m.yaml: a reference of about 10^6 parameters, projected to 2048 by SJLT."""
    from proxyscale.models import built_parameters
    from proxyscale.models.vision import make_classifier

    work = default_workdir(tmp_path)
    overlay = yaml.safe_load((REPO / "configs/cpu_1m.yaml").read_text())["attribution"]
    result = run_snakemake(
        work, "-n", "lds_report", "--configfile", str(work / "config.yaml"), str(REPO / "configs/cpu_1m.yaml")
    )
    assert result.returncode == 0, result.stderr
    sizes, m = len(overlay["vision"]["sizes"]), overlay["checkpoints"]
    assert job_counts(result.stdout) == Counter(
        attribution_data=1, datamodel_train=sizes * m, trak_featurize=sizes * m, trak=sizes * m, datamodel=sizes,
        lds_subset=24, lds=1, lds_report=1,
    )  # fmt: skip
    reference = overlay["vision"]["sizes"][overlay["vision"]["reference"]]
    params = built_parameters(make_classifier("mlp", reference["width"], 1, 10, 28))
    assert 0.95e6 < params < 1.05e6
    assert overlay["trak"]["proj_dim"] == 2048 and overlay["trak"]["projector"] == "sjlt"


def test_default_graph_plans_the_selection_experiment(tmp_path):
    work = default_workdir(tmp_path)
    result = run_snakemake(work, "-n", "dsdm_report")
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    sel = config["selection"]
    sizes, M, targets = len(sel["sizes"]), sel["checkpoints"], len(sel["targets"])
    assert sizes >= 3 and targets >= 2 and set(sel["targets"]) == {"squad", "lambada"}
    per_target = sizes + 4  # DsDm with every size, Bot-DsDm, DSIR, classifier, random
    assert job_counts(result.stdout) == Counter(
        prepare_source=len(config["sources"]),  # the BPE trains on every source's training documents
        train_tokenizer=1,
        build_testset=targets,
        selection_split=targets,
        selection_data=1,
        datamodel_train=sizes * M,
        trak_featurize=sizes * M,
        trak=sizes * M,
        datamodel=sizes,
        select=targets * per_target,
        selection_retrain=targets * per_target,
        selection_retrain_noise=targets * 2,  # random and dsdm-<reference>: the seeds beyond retrain_seeds
        dsdm=1,
        dsdm_report=1,
    )


def test_tiny_run_produces_the_dsdm_report(tiny_run):
    out = tiny_run / "results/selection/report"
    report = (out / "report.md").read_text()
    assert (
        "## Holdout loss against proxy compute (Figure 8)" in report
        and "- **lambada**: DsDm with the reference size (d8)" in report
        and "without the out-to-loss term Q (trak.q_term: false): the variant DsDm and Bot-DsDm selected with" in report
    )
    results = pd.read_parquet(out / "results.parquet").set_index("method")
    assert set(results.index) == {"dsdm-d4", "dsdm-d8", "bot_dsdm-d8", "dsir", "classifier", "random"}
    assert results.loc["dsdm-d4", "compute_ratio"] > 1
    # holdout loss: per example the mean over seeds of the retrained reference's loss on its own target (random
    # and DsDm with the reference size: retrain_seeds seeds, and up to noise_seeds in retrain_noise/)
    for method in results.index:
        runs = [tiny_run / f"results/selection/{d}/lambada/{method}.parquet" for d in ("retrain", "retrain_noise")]
        retrained = pd.concat([pd.read_parquet(r) for r in runs if r.is_file()], ignore_index=True)
        seeds = 2 if method in ("random", "dsdm-d8") else 1
        assert retrained["seed"].nunique() == seeds == results.loc[method, "seeds"]
        own = retrained[retrained["holdout_task"] == "lambada"]
        assert results.loc[method, "loss"] == pytest.approx(own.groupby("example_id")["loss"].mean().mean(), 1e-9)
    assert results["loss_delta"].drop("random").notna().all()
    cost = pd.read_parquet(out / "cost.parquet")
    assert (cost["selection_flops"] > cost["train_flops"]).all()
    # every selection holds the reference's budget: 2 tokens per parameter of d8 (2,944) in windows of 16
    subset = pd.read_parquet(tiny_run / "results/selection/subsets/lambada/dsdm-d8.parquet")
    assert len(subset) == 1000 and subset["selected"].sum() == 368
    assert (pd.read_parquet(tiny_run / "results/selection/retrain/lambada/random.parquet")["repetition"] == 1).all()
    # and each checkpoint trains one pass over its own random subset of its size's budget
    metas = {c: checkpoint_meta(tiny_run / f"results/selection/models/d4/{c}.pt") for c in (0, 1)}
    assert all(m["examples"] == m["examples_seen"] == 160 for m in metas.values())  # 2 x 1,280 params / 16
    assert cost.set_index("size").loc["d4", "examples"] == 160
    for fig in ("fig8_dsdm_vs_compute", "composition"):
        assert (out / f"{fig}.png").stat().st_size > 1000 and (out / f"{fig}.svg").exists() and f"{fig}.png" in report


def test_changing_the_selected_fraction_reruns_selection_and_retraining_only(tiny_run, tmp_path):
    out = _dry_run_with(tiny_run, tmp_path, lambda c: c["selection"].update(fraction=0.5))
    # and what is trained on the selection listed as a correlation distribution; nothing upstream
    assert job_counts(out) == Counter(
        select=6, selection_retrain=6, selection_retrain_noise=2, dsdm=1, selection_shard=1, train=2, evaluate=2,
        correlation=1, all=1,
    )  # fmt: skip


def test_a_selection_listed_as_a_distribution_is_trained_on_in_the_correlation_experiment(tiny_run, tmp_path):
    means = pd.read_parquet(tiny_run / "results/correlation/mean_losses.parquet")
    assert "lambada-dsdm-d8" in set(means["dist"])
    shard = np.load(tiny_run / "results/selection/shards/lambada/dsdm-d8.npy")
    assert len(shard) == 368 * 17  # the 368 selected windows of 16 + 1 tokens
    out = _dry_run_with(tiny_run, tmp_path, lambda c: c["selection"]["distributions"].append("lambada/random"))
    assert job_counts(out) == Counter(selection_shard=1, train=2, evaluate=2, correlation=1, all=1)
    assert sorted(planned_wildcards(out, "train")) == [
        "dist=lambada-random, size=ref",
        "dist=lambada-random, size=tiny",
    ]


def test_a_config_without_attribution_and_selection_blocks_runs_the_correlation(tiny_run, tmp_path):
    """Both blocks are optional: without them the workflow is the scale correlation alone (no selection
    distribution, no test set's target part left out), and the plan leaves their rows out."""
    work = tmp_path / "run"
    shutil.copytree(tiny_run, work, symlinks=True)
    config = tiny_config()
    del config["attribution"], config["selection"]
    write_config(config, work)
    planned = run_snakemake(work, "-n", "--quiet", "rules")
    assert planned.returncode == 0, planned.stderr
    assert job_counts(planned.stdout) == Counter(correlation=1, all=1)  # evaluations cover every example
    missing = run_snakemake(work, "-n", "dsdm_report")
    assert missing.returncode != 0 and "No rule to produce dsdm_report" in missing.stdout + missing.stderr
    result = run_snakemake(work, "--cores", "2", "plan", "correlation_report")
    assert result.returncode == 0, result.stderr[-3000:]
    means = pd.read_parquet(work / "results/correlation/mean_losses.parquet")
    assert set(means["dist"]) == set(config["distributions"])
    report = (work / "results/correlation/report.md").read_text()
    assert "Left out of every evaluation" not in report  # no target part held out for a selection
    assert "Left out of every evaluation" in (tiny_run / "results/correlation/report.md").read_text()
    plan = pd.read_parquet(work / "results/plan.parquet")
    assert set(plan["rule"]) == {"data: shards", "train", "evaluate"}


def test_lint_is_clean_and_every_rule_has_an_existing_conda_environment(tmp_path):
    work = default_workdir(tmp_path)
    result = run_snakemake(work, "--lint")
    assert (
        result.returncode == 0
        and "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr
    ), result.stdout + result.stderr
    rules = "".join(p.read_text() for p in (REPO / "rules").glob("*.smk"))
    groups = re.findall(r'conda_env\("(\w+)"\)', rules)
    assert len(groups) == len(re.findall(r"^rule \w+:", rules, re.M))
    # every rule's retries are its resource group's (what the plan counts), where the config sets them
    retries = re.findall(r'retries: rule_retries\(config, "(\w+)"\)', rules)
    assert retries == re.findall(r'rule_resources\(config, "(\w+)"', rules) and len(retries) == len(groups)
    for group in set(groups):
        spec = yaml.safe_load((REPO / "envs" / f"{'train' if group == 'evaluate' else group}.yaml").read_text())
        assert "python=3.11" in spec["dependencies"] and any(
            str(d).startswith(("pytorch", "pytorch-cpu")) for d in spec["dependencies"]
        )


def test_the_readme_results_section_is_written_from_a_finished_run(tiny_run, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# title\n\n<!-- results:start -->\nstale block\n<!-- results:end -->\n\n## next\n")
    script = REPO / "scripts/readme_results.py"
    result = subprocess.run(
        [sys.executable, str(script), "--workdir", str(tiny_run), "--readme", str(readme)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    text = readme.read_text()
    assert text.startswith("# title\n\n<!-- results:start -->\n") and text.endswith("<!-- results:end -->\n\n## next\n")
    assert "stale block" not in text and re.search(
        r"The default `snakemake --cores 2` run \(\d+ jobs\) took \d+ min \d+ s on ", text
    )
    report = (tiny_run / "results/correlation/report.md").read_text()
    verdict = report.split("## Verdict: the cheapest proxy you can trust, per test set\n", 1)[1].split("\n## ", 1)[0]
    assert verdict.strip() in text  # copied from the report, not retyped
    assert "| LDS without Q (configured) [95% CI] | LDS with Q [95% CI] |" in text and "#### Findings" in text
    figure = tmp_path / "results/readme/fig1_scatter.png"
    assert figure.read_bytes() == (tiny_run / "results/correlation/fig1_scatter.png").read_bytes()


def test_the_costliest_rules_leave_a_benchmark_file_per_job(tiny_run):
    """train, evaluate, the TRAK shards and gathers, the LDS subsets and the selection retrains each write
    Snakemake's benchmark of their job (wall time, memory), which snakemake plan reads."""
    from proxyscale.benchmarks import measured_jobs

    bench = tiny_run / "results/benchmarks"
    config = tiny_config()
    for rule in ("train", "evaluate"):
        for dist in config["distributions"]:
            assert all((bench / rule / dist / f"{size}.tsv").is_file() for size in config["sizes"]), (rule, dist)
    assert len(list((bench / "lds_subset").glob("*.tsv"))) == config["attribution"]["lds"]["subsets"]
    assert list((bench / "attribution/trak_featurize").rglob("*.tsv")) and list(
        (bench / "selection/retrain").rglob("*.tsv")
    )
    measured = measured_jobs(bench, {"attribution": "w4", "selection": "d8"})
    trained_on = len(list((bench / "train").iterdir()))  # the distributions, selection-induced ones too
    assert measured[("train", "tiny")].jobs == trained_on and measured[("train", "tiny")].seconds > 0
    assert ("attribution: lds_subset", "w4") in measured and ("selection: trak", "d8") in measured
