"""Snakemake entry: datamodels, TRAK stores and LDS subsets -> LDS tables, figures and report."""

import logging

import numpy as np

from proxyscale.artifacts import load_npy, load_npz
from proxyscale.attribution import analysis, figures, report
from proxyscale.data.tokenizer import make_tokenizer
from proxyscale.datamodels.conditioning import projection_warning
from proxyscale.datamodels.cost import checkpoint_costs, grouped, size_costs
from proxyscale.datamodels.dataset import load_dataset
from proxyscale.io import save_parquet, save_text
from proxyscale.markdown import figure_links
from proxyscale.runner import run_job


def main():
    smk = snakemake  # noqa: F821 (injected by Snakemake)
    p, inp, out = smk.params, smk.input, smk.output
    arrays, task_spec = load_dataset(inp.data)
    sizes, per_size = list(p.sizes), p.checkpoints
    datamodels = {s: load_npy(path) for s, path in zip(sizes, inp.datamodels)}
    blobs = {s: [load_npz(x) for x in paths] for s, paths in grouped(list(inp.scores), sizes, per_size).items()}
    metas, stores, walls = checkpoint_costs(sizes, per_size, list(inp.models), list(inp.stores), list(inp.scores))
    subsets = [load_npz(x) for x in inp.subsets]
    masks = np.stack([b["mask"] for b in subsets])
    actual = np.stack([b["outputs"] for b in subsets])

    compute = size_costs(metas, stores, walls, len(arrays["target_inputs"]), p.reference)
    scores = {s: [b["scores"] for b in blobs[s]] for s in sizes}
    qs = {s: [b["q"] for b in blobs[s]] for s in sizes}
    variants = analysis.datamodel_variants(scores, qs)
    lds = analysis.lds_table(variants, p.q_term, masks, actual, compute, p.reference, p.bootstrap, p.ci)
    lds_m = analysis.lds_vs_checkpoints(scores, qs, p.q_term, masks, actual)
    overlap = analysis.overlap_table(datamodels, p.reference, p.report["top_k"])
    rank = analysis.rank_table(datamodels)
    tables = [(lds, out.lds), (lds_m, out.lds_vs_m), (overlap, out.overlap), (rank, out.rank), (compute, out.compute)]
    for table, path in tables:
        save_parquet(table, path)

    order = list(compute["size"])
    figures.lds_vs_compute(lds, p.reference, out.fig_lds)
    figures.lds_vs_checkpoints(lds_m, compute, out.fig_m)
    figures.overlap_bars(overlap, compute, out.fig_overlap)
    figures.rank_heatmap(rank, order, out.fig_rank)
    shown = list(np.linspace(0, len(arrays["target_inputs"]) - 1, p.report["examples_shown"]).astype(int))
    k = min(p.report["top_k"], 8)
    if task_spec["setting"] == "vision":
        figures.top_examples_images(datamodels, order, arrays, shown, k, out.fig_examples)
    else:
        texts = analysis.example_texts(arrays, make_tokenizer(task_spec["tokenizer"]))
        figures.top_examples_text(datamodels, order, texts, shown, min(k, 3), out.fig_examples)

    accuracy = analysis.mean_target_accuracy(metas)
    repetition = max(float(b["repetition"]) for b in subsets)
    warning = projection_warning(
        int(compute["proj_dim"].max()), len(arrays["train_inputs"]), p.lambda_reg, "attribution.trak.proj_dim"
    )
    if warning:
        logging.warning(warning)
    setup = analysis.setup_summary(task_spec, arrays, p.reference, compute, p.q_term, masks, repetition, warning)
    links = figure_links(
        out.report, {key: out[key] for key in ("fig_lds", "fig_m", "fig_overlap", "fig_rank", "fig_examples")}
    )
    save_text(report.lds_report(lds, compute, lds_m, overlap, rank, accuracy, setup, p.ci, links), out.report)


run_job(snakemake, main)  # noqa: F821
