"""What finished jobs measured, from Snakemake's ``benchmark:`` files: the wall time and peak resident
memory of each job of the costliest rules (train, evaluate, the TRAK shards and gathers, the LDS subsets,
the selection retrains), so that a user sizes ``runtime`` and ``mem_mb`` from a real run, and
``snakemake plan`` replaces its estimates with them where a run of the config left them.

The files lie under ``results/benchmarks/`` as the logs do under ``results/logs/``; each maps to the
plan's row of its rule and size (:func:`plan_row`): the size is a wildcard, except for the jobs that
train the reference (an LDS subset, a selection retrain), whose size is the experiment's reference. The
replicates of a training distribution and size (config ``seeds``), under ``train/seed{k}/`` and
``evaluate/seed{k}/``, count with the size's train and evaluate rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

MIB = 2**20
REPLICATE_FOLDER = re.compile(r"seed[1-9][0-9]*")  # the folder of replicate k >= 1 (train_replicate's seed{k})


@dataclass(frozen=True)
class Measured:
    """A plan row's benchmarked jobs: how many, their mean wall seconds and their largest resident memory."""

    jobs: int
    seconds: float
    max_rss_bytes: float


def plan_row(relative: Path, references: dict[str, str]) -> tuple[str, str] | None:
    """The plan's (rule, size) of a benchmark file at ``relative`` (under the benchmarks folder), given each
    datamodel experiment's reference size; None for a file of no plan row."""
    parts = relative.with_suffix("").parts
    if parts[0] in ("train", "evaluate"):
        run = parts[2:] if len(parts) == 4 and REPLICATE_FOLDER.fullmatch(parts[1]) else parts[1:]  # (dist, size)
        return (parts[0], run[1]) if len(run) == 2 else None
    if len(parts) >= 4 and parts[1] in ("trak", "trak_featurize"):
        return f"{parts[0]}: {parts[1]}", parts[2]
    if parts[0] == "lds_subset" and "attribution" in references:
        return "attribution: lds_subset", references["attribution"]
    if parts[:2] == ("selection", "retrain") and "selection" in references:
        return "selection: selection_retrain", references["selection"]
    return None


def read_benchmark(path: Path) -> tuple[float, float] | None:
    """(wall seconds, peak resident bytes) of one Snakemake benchmark file; None where it has no figures
    (a job that failed)."""
    try:
        table = pd.read_csv(path, sep="\t")
    except (OSError, ValueError):
        return None
    if table.empty or "s" not in table or "max_rss" not in table:
        return None
    seconds, rss = pd.to_numeric(table["s"], errors="coerce"), pd.to_numeric(table["max_rss"], errors="coerce")
    if seconds.isna().all():
        return None
    return float(seconds.mean()), float(rss.max()) * MIB if rss.notna().any() else float("nan")


def measured_jobs(directory: str | Path, references: dict[str, str]) -> dict[tuple[str, str], Measured]:
    """Every plan row the benchmark files under ``directory`` measure (none when it does not exist)."""
    directory = Path(directory)
    found: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for path in sorted(directory.rglob("*.tsv")) if directory.is_dir() else []:
        row, figures = plan_row(path.relative_to(directory), references), read_benchmark(path)
        if row and figures:
            found.setdefault(row, []).append(figures)
    return {
        row: Measured(len(runs), sum(s for s, _ in runs) / len(runs), max(r for _, r in runs))
        for row, runs in found.items()
    }
