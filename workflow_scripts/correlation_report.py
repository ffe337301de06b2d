"""Snakemake entry: all per-sample losses and checkpoints -> tables, figures and the markdown report."""

import os

import pandas as pd
import torch

from proxyscale import correlation, plots, report
from proxyscale.evaluate import chance_accuracy
from proxyscale.io import save_parquet, save_text
from proxyscale.runner import run_job


def main():
    smk = snakemake  # noqa: F821 (injected by Snakemake)
    p, out = smk.params, smk.output
    losses = pd.concat(
        [pd.read_parquet(path).assign(dist=d, size=s, test=t) for (d, s, t), path in zip(p.loss_keys, smk.input.losses)],
        ignore_index=True,
    )
    runs = pd.DataFrame(torch.load(path, map_location="cpu", weights_only=True)["meta"] for path in smk.input.ckpts)
    curves = pd.concat(
        [pd.read_parquet(path).assign(dist=d, size=s) for (d, s), path in zip(p.run_keys, smk.input.curves)],
        ignore_index=True,
    )
    chance = {t: chance_accuracy(pd.read_parquet(path)) for t, path in zip(p.tests, smk.input.testsets)}

    means = correlation.mean_losses(losses)
    compute = correlation.compute_table(runs, p.reference)
    summary = correlation.scale_correlation(means, compute, chance, p.reference, p.bootstrap, p.ci)
    per_sample = correlation.per_sample_table(losses, p.reference)
    loo = correlation.loo_predictions(means, p.reference)
    for table, path in [(means, out.means), (compute, out.compute), (summary, out.summary), (per_sample, out.per_sample), (loo, out.loo)]:
        save_parquet(table, path)

    largest_proxy = compute["size"][compute["size"] != p.reference].iloc[0]
    plots.scatter_grid(means, compute, p.reference, out.scatter)
    plots.r2_vs_compute(summary, out.r2_compute)
    plots.r2_vs_accuracy(summary, out.r2_accuracy)
    plots.per_sample_scatter(losses, largest_proxy, p.reference, p.tests[0], p.panels, out.per_sample_fig)
    plots.per_sample_hist(per_sample, compute, out.per_sample_hist)
    plots.training_curves(curves, out.curves)

    here = os.path.dirname(out.report)
    figures = {k: os.path.relpath(out[k], here) for k in ("scatter", "r2_compute", "r2_accuracy", "curves", "per_sample_hist")}
    figures["per_sample"] = os.path.relpath(out.per_sample_fig, here)
    save_text(report.correlation_report(summary, compute, means, per_sample, p.reference, p.ci, figures), out.report)


run_job(snakemake, main)  # noqa: F821
