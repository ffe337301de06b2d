"""The end-of-run console summary: each report's headline from its tables, and the failed jobs of a run."""

from __future__ import annotations

import os

import pandas as pd

from proxyscale.io import save_parquet, save_text
from proxyscale.summary import failure_summary, run_summary


def _reports(work):
    """Report files and the tables the headlines read, as the report rules write them."""
    corr, lds, dsdm = (
        work / "results/correlation",
        work / "results/attribution/report",
        work / "results/selection/report",
    )
    summary = pd.DataFrame(
        {
            "test": ["c4", "c4", "squad", "squad"],
            "size": ["l", "s", "l", "s"],
            "compute_ratio": [11.6, 72.5, 11.6, 72.5],
            "r2": [0.9, 0.5, 0.7, 0.1],
        }
    )
    save_parquet(summary, corr / "summary.parquet")
    save_parquet(
        pd.DataFrame({"test": ["c4", "squad"], "proxy": ["s", None], "compute_ratio": [72.5, None]}),
        corr / "verdict.parquet",
    )
    rows = [
        ("ref", False, True, 0.30, 0.25, 0.35, 1.0),
        ("small", False, True, 0.20, 0.15, 0.25, 40.0),
        ("ref", True, False, 0.40, 0.35, 0.45, 1.0),
        ("small", True, False, 0.10, 0.05, 0.15, 40.0),
    ]
    columns = ["size", "q_term", "configured", "lds", "lds_lo", "lds_hi", "compute_ratio"]
    save_parquet(pd.DataFrame(rows, columns=columns), lds / "lds.parquet")
    results = pd.DataFrame(
        {
            "target": ["squad"] * 3,
            "method": ["dsdm-d4", "dsdm-d16", "random"],
            "kind": ["dsdm", "dsdm", "random"],
            "compute_ratio": [49.3, 1.0, None],
            "loss_delta": [-0.166, -0.170, None],
            "loss_delta_lo": [-0.204, -0.206, None],
            "loss_delta_hi": [-0.131, -0.137, None],
        }
    )
    save_parquet(results, dsdm / "results.parquet")
    for folder in (corr, lds, dsdm):
        save_text("# report\n", folder / "report.md")


def test_the_summary_gives_each_reports_headline_read_from_its_tables(tmp_path):
    _reports(tmp_path)
    text = run_summary(tmp_path, since=0.0)
    assert "correlation: results/correlation/report.md" in text
    assert "largest proxy l (11.6x less compute than the reference): R^2 0.80 across distributions" in text
    assert "per test set: c4: s (72x), squad: none" in text
    assert "attribution: results/attribution/report/report.md" in text
    assert "LDS without Q, reference first: ref 0.300 [0.250, 0.350] (0.400 with Q), small 0.200" in text
    assert "squad: DsDm holdout loss minus random's (below 0: DsDm helps): dsdm-d16 -0.170 [-0.206, -0.137]" in text
    assert "snakemake --report results/report.html" in text


def test_the_summary_names_only_the_reports_this_run_made(tmp_path):
    _reports(tmp_path)
    report = tmp_path / "results/attribution/report/report.md"
    os.utime(report, (report.stat().st_atime, report.stat().st_mtime + 100))
    text = run_summary(tmp_path, since=report.stat().st_mtime - 1)
    assert "attribution:" in text and "correlation:" not in text and "selection:" not in text
    assert run_summary(tmp_path, since=report.stat().st_mtime + 1) == ""  # a run that made no report: nothing


SNAKEMAKE_LOG = """\
[Thu Nov 26 10:12:19 2026]
localrule build_testset:
    input: data/c4.jsonl.xz
    output: results/testsets/c4.parquet
    log: {c4_log}
    jobid: 5
    reason: Missing output files: results/testsets/c4.parquet
    wildcards: test=c4
    resources: tmpdir=/tmp, runtime=30, gpu=0, mem_mb=2000
[Thu Nov 26 10:12:20 2026]
Error in rule prepare_source:
    message: None
    jobid: 3
    input: data/web.jsonl.xz
    output: results/shards/web.npy, results/holdout/web.parquet
    log: {web_log} (check log file(s) for error details)
    wildcards: source=web
Shutting down, this might take some time.
[Thu Nov 26 10:12:21 2026]
Error in rule build_testset:
    message: None
    jobid: 5
    input: data/c4.jsonl.xz
    output: results/testsets/c4.parquet
    log: {c4_log} (check log file(s) for error details)
[Thu Nov 26 10:12:21 2026]
Error in rule train:
    message: None
    jobid: 7
    output: results/checkpoints/books/tiny.pt
Exiting because a job execution failed. Look above for error messages
"""


def test_the_failure_summary_names_each_job_its_one_line_and_its_log(tmp_path):
    """Each failed job: its rule and wildcards (from the job's start block when its error block has none),
    the one line its runner wrote (else its log's last line), and the log's path."""
    web_log, c4_log = tmp_path / "web.log", tmp_path / "c4.log"
    web_log.write_text("reading data/web.jsonl.xz\nerror in rule prepare_source: data/web.jsonl.xz: not xz\n")
    c4_log.write_text("Traceback (most recent call last):\n  ...\nMemoryError\n")
    log = tmp_path / "run.snakemake.log"
    log.write_text(SNAKEMAKE_LOG.format(web_log=web_log, c4_log=c4_log))
    assert failure_summary([log]).splitlines()[1:] == [
        "3 job(s) failed:",
        "  prepare_source (source=web): data/web.jsonl.xz: not xz",
        f"    log: {web_log}",
        "  build_testset (test=c4): MemoryError",
        f"    log: {c4_log}",
        "  train (results/checkpoints/books/tiny.pt)",
        "    no log file",
        f"Snakemake's own log: {log}",
    ]
    assert failure_summary(tmp_path / "missing.log") == ""
