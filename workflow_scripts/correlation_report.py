"""Snakemake entry: all per-sample losses and checkpoints -> tables, figures and the report (markdown, and
the same as an HTML page for snakemake --report)."""

from proxyscale.artifacts import load_parquet
from proxyscale.correlation import analysis, figures, report
from proxyscale.correlation.evaluate import chance_accuracy
from proxyscale.data.tokenizer import describe_tokenizers
from proxyscale.io import save_parquet
from proxyscale.layout import replicate_runs
from proxyscale.markdown import figure_links, save_report
from proxyscale.runner import run_job


def main():
    smk = snakemake  # noqa: F821 (injected by Snakemake)
    p, inp, out = smk.params, smk.input, smk.output
    testsets = {t: load_parquet(path) for t, path in zip(p.tests, inp.testsets)}
    splits = {t: load_parquet(path) for t, path in zip(p.reserved_tests, inp.reserved)}
    runs = [(d, s) for d in p.dists for s in p.sizes]  # the rule's inputs are in this order
    trained = [(d, s) for d, s in runs if s not in p.imported_sizes]
    keys = [(d, s, k, t) for d, s, k in replicate_runs(p.dists, p.sizes, p.seeds) for t in p.tests]
    losses = analysis.read_tables(keys, inp.losses, ("dist", "size", "seed", "test"))  # every seed's
    losses, reserved = analysis.drop_reserved(losses, testsets, splits)
    losses, unit = analysis.comparable_losses(losses)
    curves = analysis.read_tables(trained, inp.curves, ("dist", "size"))
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
        p.decision_probability,
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
    figures.reliability_figure(r.reliability, out.reliability_fig, p.ci)

    keys = ("scatter", "r2_compute", "r2_accuracy", "curves", "per_sample_hist", "per_sample_fig", "reliability_fig")
    save_report(
        report.correlation_report(results, figure_links(out.report, {k: out[k] for k in keys})), out.report, out.html
    )


run_job(snakemake, main)  # noqa: F821
