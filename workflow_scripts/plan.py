"""Snakemake entry: the config's plan (jobs, FLOPs, GPU-hours, memory, disk) -> results/plan.md and a
parquet table, from the config alone; the MFU measured by a finished correlation run of this config
replaces the assumed one where its compute table exists, and finished jobs' benchmark files replace the
estimated hours and memory of their rows."""

import logging
from pathlib import Path

from proxyscale.artifacts import load_parquet
from proxyscale.io import save_parquet, save_text
from proxyscale.plan import plan, plan_markdown
from proxyscale.runner import run_job


def main():
    smk = snakemake  # noqa: F821 (injected by Snakemake)
    measured = {}
    compute = Path(smk.params.compute)
    if compute.is_file():
        table = load_parquet(compute)
        if "mfu" in table:
            measured = {s: float(m) for s, m in zip(table["size"], table["mfu"]) if m == m}
            logging.info("measured MFU from %s: %s", compute, measured)
    table = plan(smk.params.config, measured, smk.params.benchmarks)
    save_parquet(table, smk.output.table)
    save_text(plan_markdown(table, smk.params.config), smk.output.md)
    logging.info("plan: %d rows, %.0f GPU-hours", len(table), table["gpu_hours"].sum())


run_job(snakemake, main)  # noqa: F821
