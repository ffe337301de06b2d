"""Snakemake entry: retraining results, subsets and proxy costs -> DsDm tables, figures and report
(markdown and HTML)."""

import logging

import pandas as pd

from proxyscale.artifacts import load_parquet
from proxyscale.datamodels.conditioning import projection_warning
from proxyscale.datamodels.cost import checkpoint_costs, size_costs
from proxyscale.datamodels.dataset import load_dataset
from proxyscale.io import save_parquet
from proxyscale.markdown import figure_links, save_report
from proxyscale.runner import run_job
from proxyscale.selection import analysis, figures, report
from proxyscale.selection.registry import noise_runs


def main():
    smk = snakemake  # noqa: F821 (injected by Snakemake)
    p, inp, out = smk.params, smk.input, smk.output
    data = load_dataset(inp.data)
    runs = [(t, m) for t in p.targets for m in p.methods]  # the rule's inputs are in this order
    noise = noise_runs(list(p.targets), list(p.methods), p.reference, p.noise_seeds)  # the extra seeds' runs
    retrained = [*zip(runs, inp.retrains), *zip(noise, inp.noise)]
    retrains = pd.concat(
        [load_parquet(path).assign(target=t, method=m) for (t, m), path in retrained], ignore_index=True
    )
    subsets = {run: load_parquet(path) for run, path in zip(runs, inp.subsets)}
    costs = checkpoint_costs(list(p.sizes), p.checkpoints, list(inp.models), list(inp.stores))
    compute = size_costs(*costs, len(data["target_task"]), p.reference)

    results = analysis.results_table(retrains, compute, p.bootstrap, p.ci)
    cost = analysis.cost_table(compute, retrains)
    composition = analysis.composition_table(subsets, data["train_source"], data.task["pool_sources"])
    for table, path in [(results, out.results), (cost, out.cost), (composition, out.composition)]:
        save_parquet(table, path)
    figures.dsdm_vs_compute(results, p.reference, out.fig_dsdm)
    figures.composition_bars(composition, out.fig_composition)

    warning = projection_warning(
        int(compute["proj_dim"].max()), len(data.train), p.lambda_reg, "selection.trak.proj_dim"
    )
    if warning:
        logging.warning(warning)
    setup = analysis.setup_summary(data, retrains, subsets, compute, p.reference, p.q_term, warning)
    links = figure_links(out.report, {key: out[key] for key in ("fig_dsdm", "fig_composition")})
    save_report(report.dsdm_report(results, cost, composition, setup, p.ci, links), out.report, out.html)


run_job(snakemake, main)  # noqa: F821
