"""Snakemake entry: all per-sample losses and checkpoints -> tables, figures and the markdown report."""

from proxyscale.artifacts import load_parquet
from proxyscale.correlation import analysis, figures, report
from proxyscale.correlation.evaluate import chance_accuracy
from proxyscale.data.tokenizer import describe_tokenizers
from proxyscale.io import save_parquet, save_text
from proxyscale.markdown import figure_links
from proxyscale.runner import run_job


def main():
    smk = snakemake  # noqa: F821 (injected by Snakemake)
    p, inp, out = smk.params, smk.input, smk.output
    testsets = {t: load_parquet(path) for t, path in zip(p.tests, inp.testsets)}
    splits = {t: load_parquet(path) for t, path in zip(p.reserved_tests, inp.reserved)}
    losses = analysis.read_tables(p.loss_keys, inp.losses, ("dist", "size", "test"))
    losses, reserved = analysis.drop_reserved(losses, testsets, splits)
    losses, unit = analysis.comparable_losses(losses)
    curves = analysis.read_tables(p.run_keys, inp.curves, ("dist", "size"))
    runs = analysis.read_runs(inp.ckpts, inp.imported)
    chance = {t: chance_accuracy(frame) for t, frame in testsets.items()}

    means = analysis.mean_losses(losses, p.induced)
    accuracy = analysis.accuracy_table(losses, chance, p.bootstrap, p.ci, p.seed)
    compute = analysis.compute_table(runs, p.reference)
    summary = analysis.scale_correlation(means, compute, chance, p.reference, p.bootstrap, p.ci)
    per_sample = analysis.per_sample_table(losses, p.reference)
    loo = analysis.loo_predictions(means, p.reference)
    null = analysis.per_sample_null(losses, p.reference, p.null_permutations, p.seed)
    verdict = analysis.verdict(summary, **p.verdict)
    tables = {
        "means": means,
        "accuracy": accuracy,
        "compute": compute,
        "summary": summary,
        "per_sample": per_sample,
        "loo": loo,
        "null": null,
        "verdict": verdict,
    }
    for key, table in tables.items():
        save_parquet(table.assign(loss_unit=unit) if key in ("means", "loo") else table, out[key])

    figures.scatter_grid(means, compute, p.reference, out.scatter, p.induced, unit)
    figures.r2_vs_compute(summary, out.r2_compute)
    figures.r2_vs_accuracy(summary, out.r2_accuracy)
    proxy = analysis.largest_proxy(compute, p.reference)
    figures.per_sample_scatter(
        losses, proxy, p.reference, p.tests[0], p.panels, out.per_sample_fig, induced=p.induced, unit=unit
    )
    figures.per_sample_hist(per_sample, null, compute, out.per_sample_hist)
    figures.training_curves(curves, out.curves)

    keys = ("scatter", "r2_compute", "r2_accuracy", "curves", "per_sample_hist", "per_sample_fig")
    links = figure_links(out.report, {k: out[k] for k in keys})
    text = report.correlation_report(
        summary,
        compute,
        means,
        accuracy,
        per_sample,
        null,
        verdict,
        analysis.repeated_runs(runs),
        dict(p.verdict),
        p.reference,
        p.ci,
        links,
        reserved,
        p.induced,
        describe_tokenizers(p.tokenizer, p.imported_sizes),
        unit,
    )
    save_text(text, out.report)


run_job(snakemake, main)  # noqa: F821
