"""Snakemake entry: datamodels, TRAK stores and LDS subsets -> LDS tables, figures and report."""

import os

import numpy as np

from proxyscale import lds_analysis, plots_lds, report
from proxyscale.attribution_data import load_dataset
from proxyscale.io import save_parquet, save_text
from proxyscale.runner import run_job
from proxyscale.tasks import make_task
from proxyscale.tokenizer import make_tokenizer


def _describe(task_spec: dict) -> str:
    if task_spec["setting"] == "vision":
        return f"{task_spec['family']} on {'x'.join(map(str, task_spec['image_shape']))} images, {task_spec['num_classes']} classes"
    return f"GPT on windows of {task_spec['context_length'] + 1} tokens"


def main():
    smk = snakemake  # noqa: F821 (injected by Snakemake)
    p, inp, out = smk.params, smk.input, smk.output
    arrays, task_spec = load_dataset(inp.data)
    sizes, M = list(p.sizes), p.checkpoints
    datamodels = {s: np.load(path) for s, path in zip(sizes, inp.datamodels)}
    blobs = {s: [np.load(x) for x in paths] for s, paths in lds_analysis.grouped(list(inp.scores), sizes, M).items()}
    metas, stores, walls = lds_analysis.checkpoint_costs(sizes, M, list(inp.models), list(inp.stores), list(inp.scores))
    subsets = [np.load(x) for x in inp.subsets]
    masks = np.stack([b["mask"] for b in subsets])
    actual = np.stack([b["outputs"] for b in subsets])

    compute = lds_analysis.compute_table(metas, stores, walls, len(arrays["target_inputs"]), p.reference)
    lds = lds_analysis.lds_table(datamodels, masks, actual, compute, p.reference, p.bootstrap, p.ci)
    lds_m = lds_analysis.lds_vs_checkpoints({s: [b["scores"] for b in blobs[s]] for s in sizes}, {s: [b["q"] for b in blobs[s]] for s in sizes}, p.q_term, masks, actual)
    overlap = lds_analysis.overlap_table(datamodels, p.reference, p.report["top_k"])
    rank = lds_analysis.rank_table(datamodels)
    for table, path in [(lds, out.lds), (lds_m, out.lds_vs_m), (overlap, out.overlap), (rank, out.rank), (compute, out.compute)]:
        save_parquet(table, path)

    order = list(compute["size"])
    plots_lds.lds_vs_compute(lds, p.reference, out.fig_lds)
    plots_lds.lds_vs_checkpoints(lds_m, compute, out.fig_m)
    plots_lds.overlap_bars(overlap, compute, out.fig_overlap)
    plots_lds.rank_heatmap(rank, order, out.fig_rank)
    shown = list(np.linspace(0, len(arrays["target_inputs"]) - 1, p.report["examples_shown"]).astype(int))
    k = min(p.report["top_k"], 8)
    if task_spec["setting"] == "vision":
        plots_lds.top_examples_images(datamodels, order, arrays, shown, k, out.fig_examples)
    else:
        tok = make_tokenizer(task_spec["tokenizer"])
        texts = {
            "train": [tok.decode(list(t)) for t in arrays["train_inputs"]],
            "target": [tok.decode(list(t[m])) for t, m in zip(arrays["target_inputs"], arrays["target_labels"])],
        }
        plots_lds.top_examples_text(datamodels, order, texts, shown, min(k, 3), out.fig_examples)
    accuracy = {s: None if metas[s][0]["target_accuracy"] is None else float(np.mean([m["target_accuracy"] for m in metas[s]])) for s in sizes}

    setup = {
        "setting": task_spec["setting"], "description": _describe(task_spec), "reference": p.reference,
        "n_train": len(arrays["train_inputs"]), "n_targets": len(arrays["target_inputs"]), "checkpoints": M,
        "proj_dim": int(compute["proj_dim"].max()), "q_term": p.q_term, "subsets": len(subsets),
        "alpha": float(masks.mean()),
    }
    here = os.path.dirname(out.report)
    figures = {key: os.path.relpath(out[key], here) for key in ("fig_lds", "fig_m", "fig_overlap", "fig_rank", "fig_examples")}
    save_text(report.lds_report(lds, compute, lds_m, overlap, rank, accuracy, setup, p.ci, figures), out.report)


run_job(snakemake, main)  # noqa: F821
