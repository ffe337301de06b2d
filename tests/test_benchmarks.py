"""Per-job measurements: Snakemake benchmark files of the costliest rules, mapped to the plan's rows, which
they replace (mean wall time, largest resident memory, the MFU that follows) and say so."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conftest import REPO, validated
from proxyscale.benchmarks import MIB, Measured, measured_jobs, plan_row
from proxyscale.plan import DEFAULT_PEAK_TFLOPS, plan, plan_markdown

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def bench(path: Path, seconds, rss) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + f"{seconds}\t0:00:00\t{rss}\t1\t1\t1\t0\t0\t0\t{seconds}\n")


@pytest.mark.parametrize(
    "path, row",
    [
        ("train/web/l.tsv", ("train", "l")),
        ("evaluate/books/xs.tsv", ("evaluate", "xs")),
        ("train/seed1/web/ref.tsv", ("train", "ref")),  # replicate 1 (seeds:)
        ("evaluate/seed12/books/ref.tsv", ("evaluate", "ref")),
        ("train/seed0/web/ref.tsv", None),  # replicate 0 has no folder of its own
        ("train/web/ref/extra.tsv", None),
        ("attribution/trak_featurize/h64/3/0-of-2.tsv", ("attribution: trak_featurize", "h64")),
        ("selection/trak/d8/1.tsv", ("selection: trak", "d8")),
        ("lds_subset/17.tsv", ("attribution: lds_subset", "h8192")),  # the jobs that train the reference
        ("selection/retrain/squad/dsdm-d4.tsv", ("selection: selection_retrain", "d16")),
        ("other/thing.tsv", None),
    ],
)
def test_each_benchmark_file_maps_to_its_plan_row(path, row):
    assert plan_row(Path(path), {"attribution": "h8192", "selection": "d16"}) == row


def test_benchmarks_replace_the_plans_estimates_of_their_rows_and_it_says_so(tmp_path):
    config = validated(yaml.safe_load((REPO / "config.yaml").read_text()))
    bench(tmp_path / "train/web/l.tsv", 100.0, 1000.0)
    bench(tmp_path / "train/books/l.tsv", 300.0, 2000.0)
    bench(tmp_path / "train/wiki/l.tsv", "NA", "NA")  # a failed job's file: no figures
    assert set(measured_jobs(tmp_path, {})) == {("train", "l")}
    estimated = plan(config).set_index(["rule", "size"])
    table = plan(config, benchmark_dir=tmp_path)
    got = table.set_index(["rule", "size"])
    row = got.loc[("train", "l")]
    assert row["measured_jobs"] == 2 and row["hours_per_job"] == pytest.approx(200.0 / 3600)
    assert row["host_gib"] == pytest.approx(2000.0 * MIB / 2**30)
    assert row["mfu_source"] == "benchmarked"
    assert row["mfu"] == pytest.approx(row["flops_per_job"] / (200.0 * DEFAULT_PEAK_TFLOPS * 1e12))
    assert row["gpu_hours"] == pytest.approx(row["jobs"] * 200.0 / 3600)
    others = got.drop(index=("train", "l"))
    assert (others["measured_jobs"] == 0).all()
    assert others["gpu_hours"].equals(estimated.drop(index=("train", "l"))["gpu_hours"])  # the rest estimated
    text = plan_markdown(table, config)
    assert "Measured, not estimated (train l): hours per job are the mean wall time" in text
    assert "of 2 finished jobs' benchmark files (results/benchmarks/)" in text
    assert "Measured, not estimated" not in plan_markdown(estimated.reset_index(), config)


def test_every_replicates_benchmark_counts_with_its_sizes_row(tmp_path):
    bench(tmp_path / "train/web/ref.tsv", 100.0, 1000.0)
    bench(tmp_path / "train/seed1/web/ref.tsv", 200.0, 3000.0)
    bench(tmp_path / "evaluate/seed1/web/ref.tsv", 10.0, 500.0)
    assert measured_jobs(tmp_path, {}) == {
        ("train", "ref"): Measured(jobs=2, seconds=150.0, max_rss_bytes=3000.0 * MIB),
        ("evaluate", "ref"): Measured(jobs=1, seconds=10.0, max_rss_bytes=500.0 * MIB),
    }
