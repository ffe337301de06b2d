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
    results = analysis.analyse(
        losses,
        analysis.read_runs(inp.ckpts, inp.imported),
        {t: chance_accuracy(frame) for t, frame in testsets.items()},
        p.reference,
        p.bootstrap,
        p.ci,
        p.null_permutations,
        p.seed,
        dict(p.verdict),
        unit=unit,
        reserved=reserved,
        induced=tuple(p.induced),
        tokenizer=describe_tokenizers(p.tokenizer, p.imported_sizes),
    )
    for key, table in results.tables().items():
        save_parquet(table, out[key])

    r = results
    figures.scatter_grid(r.means, r.compute, p.reference, out.scatter, p.induced, unit)
    figures.r2_vs_compute(r.summary, out.r2_compute)
    figures.r2_vs_accuracy(r.summary, out.r2_accuracy)
    proxy = analysis.largest_proxy(r.compute, p.reference)
    figures.per_sample_scatter(
        losses, proxy, p.reference, p.tests[0], p.panels, out.per_sample_fig, induced=p.induced, unit=unit
    )
    figures.per_sample_hist(r.per_sample, r.null, r.compute, out.per_sample_hist)
    figures.training_curves(curves, out.curves)

    keys = ("scatter", "r2_compute", "r2_accuracy", "curves", "per_sample_hist", "per_sample_fig")
    save_text(report.correlation_report(results, figure_links(out.report, {k: out[k] for k in keys})), out.report)


run_job(snakemake, main)  # noqa: F821
