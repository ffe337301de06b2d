"""Snakemake entry: retraining results, subsets and proxy costs -> DsDm tables, figures and report."""

import os

import pandas as pd

from proxyscale import lds_analysis, plots_selection, report, selection_analysis
from proxyscale.attribution_data import load_dataset
from proxyscale.io import save_parquet, save_text
from proxyscale.runner import run_job


def main():
    smk = snakemake  # noqa: F821 (injected by Snakemake)
    p, inp, out = smk.params, smk.input, smk.output
    arrays, task = load_dataset(inp.data)
    runs = [tuple(r) for r in p.runs]
    retrains = pd.concat(
        [pd.read_parquet(path).assign(target=t, method=m) for (t, m), path in zip(runs, inp.retrains)], ignore_index=True
    )
    subsets = {run: pd.read_parquet(path) for run, path in zip(runs, inp.subsets)}
    metas, stores, walls = lds_analysis.checkpoint_costs(list(p.sizes), p.checkpoints, list(inp.models), list(inp.stores), list(inp.scores))
    compute = lds_analysis.compute_table(metas, stores, walls, len(arrays["target_inputs"]), p.reference)

    results = selection_analysis.results_table(retrains, compute, p.bootstrap, p.ci)
    cost = selection_analysis.cost_table(compute, retrains)
    composition = selection_analysis.composition_table(subsets, arrays["train_source"], task["pool_sources"])
    for table, path in [(results, out.results), (cost, out.cost), (composition, out.composition)]:
        save_parquet(table, path)
    plots_selection.dsdm_vs_compute(results, p.reference, out.fig_dsdm)
    plots_selection.composition_bars(composition, out.fig_composition)

    first = next(iter(subsets.values()))
    setup = {
        "n_pool": len(arrays["train_inputs"]), "window": arrays["train_inputs"].shape[1], "sources": task["pool_sources"],
        "targets": task["targets"], "n_targets": int((arrays["target_task"] == 0).sum()),
        "n_holdout": int((arrays["holdout_task"] == 0).sum()), "checkpoints": len(metas[p.reference]),
        "proj_dim": int(compute["proj_dim"].max()), "fraction": p.fraction, "k": int(first["selected"].sum()),
        "reference": p.reference, "seeds": int(retrains["seed"].nunique()),
    }
    here = os.path.dirname(out.report)
    figures = {key: os.path.relpath(out[key], here) for key in ("fig_dsdm", "fig_composition")}
    save_text(report.dsdm_report(results, cost, composition, setup, p.ci, figures), out.report)


run_job(snakemake, main)  # noqa: F821
