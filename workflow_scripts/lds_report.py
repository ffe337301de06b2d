"""Snakemake entry: checkpoint scores, datamodels, TRAK stores and LDS subsets -> LDS tables, figures
and report (markdown and HTML). Scores and datamodels are read a block of training rows at a time."""

import logging

import numpy as np

from proxyscale.artifacts import load_npz
from proxyscale.attribution import analysis, figures, report
from proxyscale.data.tokenizer import make_tokenizer
from proxyscale.datamodels.conditioning import projection_warning
from proxyscale.datamodels.cost import checkpoint_costs, grouped, size_costs
from proxyscale.datamodels.datamodel import CheckpointScores, sample_rows
from proxyscale.datamodels.dataset import load_dataset
from proxyscale.datamodels.store import load_q
from proxyscale.io import save_parquet
from proxyscale.markdown import figure_links, save_report
from proxyscale.runner import run_job


def main():
    smk = snakemake  # noqa: F821 (injected by Snakemake)
    p, inp, out = smk.params, smk.input, smk.output
    data = load_dataset(inp.data)
    train, targets = data.train, data.part("target")
    sizes, per_size = list(p.sizes), p.checkpoints
    metas, stores = checkpoint_costs(sizes, per_size, list(inp.models), list(inp.stores))
    subsets = [load_npz(x) for x in inp.subsets]
    masks = np.stack([b["mask"] for b in subsets])
    actual = np.stack([b["outputs"] for b in subsets])

    compute = size_costs(metas, stores, len(targets), p.reference)
    compute["trak_rank"] = compute["size"].map(analysis.trak_ranks(stores))
    score_files, store_dirs = grouped(list(inp.scores), sizes, per_size), grouped(list(inp.stores), sizes, per_size)
    predictions = {
        s: analysis.size_predictions(CheckpointScores(score_files[s], [load_q(d) for d in store_dirs[s]]), masks)
        for s in sizes
    }
    k = p.report["top_k"]
    shown_k = min(k, 8)
    rows = sample_rows(len(train))
    extremes = {s: analysis.datamodel_extremes(path, max(k, shown_k), rows) for s, path in zip(sizes, inp.datamodels)}
    lds = analysis.lds_table(predictions, p.q_term, actual, compute, p.reference, p.bootstrap, p.ci)
    lds_m = analysis.lds_vs_checkpoints(predictions, p.q_term, actual)
    overlap = analysis.overlap_table(extremes, p.reference, k)
    rank = analysis.rank_table(extremes)
    tables = [(lds, out.lds), (lds_m, out.lds_vs_m), (overlap, out.overlap), (rank, out.rank), (compute, out.compute)]
    for table, path in tables:
        save_parquet(table, path)

    order = list(compute["size"])
    figures.lds_vs_compute(lds, p.reference, out.fig_lds)
    figures.lds_vs_checkpoints(lds_m, compute, out.fig_m)
    figures.overlap_bars(overlap, compute, out.fig_overlap)
    figures.rank_heatmap(rank, order, out.fig_rank)
    shown = list(np.linspace(0, len(targets) - 1, p.report["examples_shown"]).astype(int))
    tops = {s: e.top for s, e in extremes.items()}
    if data.task["setting"] == "vision":
        figures.top_examples_images(tops, order, train, targets, shown, shown_k, out.fig_examples)
    else:
        text_k = min(shown_k, 3)
        needed = np.concatenate([t[:text_k, shown].ravel() for t in tops.values()])
        texts = analysis.example_texts(train, targets, make_tokenizer(data.task["tokenizer"]), needed, shown)
        figures.top_examples_text(tops, order, texts, shown, text_k, out.fig_examples)

    accuracy = analysis.mean_target_accuracy(metas)
    repetition = max(float(b["repetition"]) for b in subsets)
    warning = projection_warning(int(compute["proj_dim"].max()), len(train), p.lambda_reg, "attribution.trak.proj_dim")
    if warning:
        logging.warning(warning)
    setup = analysis.setup_summary(
        data.task, len(train), len(targets), p.reference, compute, p.q_term, masks, repetition, warning
    )
    links = figure_links(
        out.report, {key: out[key] for key in ("fig_lds", "fig_m", "fig_overlap", "fig_rank", "fig_examples")}
    )
    save_report(
        report.lds_report(lds, compute, lds_m, overlap, rank, accuracy, setup, p.ci, links, p.proj_dim),
        out.report,
        out.html,
    )


run_job(snakemake, main)  # noqa: F821
