"""Tables of the attribution-across-scale experiment (the paper's section 3.1, Figures 6 and 7).

Inputs are plain arrays: datamodel matrices per size (n_train, n_targets), per-checkpoint scores,
the LDS subsets' masks (m, n_train) and the reference's outputs on them (m, n_targets), and the
training summaries of the checkpoints (read by :func:`checkpoint_costs`, which the DsDm report
shares). Outputs are tidy data frames the plots and report read.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from proxyscale import stats
from proxyscale.datamodels import datamodel, rank_correlation, top_k_overlap
from proxyscale.lds import lds_per_target, predicted_outputs
from proxyscale.trak_store import store_summary, trak_flops


def grouped(paths: list, sizes: list[str], per_size: int) -> dict[str, list]:
    """Paths listed size-major, ``per_size`` checkpoints each, as {size: its paths}."""
    return {s: list(paths[i * per_size : (i + 1) * per_size]) for i, s in enumerate(sizes)}


def checkpoint_costs(sizes: list[str], per_size: int, models: list, stores: list, scores: list) -> tuple[dict, dict, dict]:
    """Per size, its checkpoints' training summaries, TRAK store summaries and scoring wall times,
    read from their files (each list size-major): the inputs of :func:`compute_table`."""
    metas = {s: [torch.load(x, map_location="cpu", weights_only=True)["meta"] for x in paths] for s, paths in grouped(models, sizes, per_size).items()}
    summaries = {s: [store_summary(x) for x in paths] for s, paths in grouped(stores, sizes, per_size).items()}
    walls = {s: [float(np.load(x)["wall_seconds"]) for x in paths] for s, paths in grouped(scores, sizes, per_size).items()}
    return metas, summaries, walls


def compute_table(metas: dict[str, list[dict]], stores: dict[str, list[dict]], score_walls: dict[str, list[float]], n_targets: int, reference: str) -> pd.DataFrame:
    """Per size: parameters, training FLOPs and wall time of its M checkpoints, TRAK FLOPs (cost
    model of :func:`proxyscale.trak_store.trak_flops`) and measured featurize + scoring time, and the
    compute ratio (the reference's training FLOPs per model over the size's)."""
    rows = []
    for size, ms in metas.items():
        m0 = ms[0]
        trak = sum(
            trak_flops(m["forward_flops_per_example"], m["params"], s["proj_dim"], s["n_train"], n_targets)
            for m, s in zip(ms, stores[size])
        )
        rows.append(
            {
                "size": size,
                "params": m0["params"],
                "checkpoints": len(ms),
                "train_flops_per_model": m0["flops"],
                "train_flops": sum(m["flops"] for m in ms),
                "trak_flops": trak,
                "train_seconds": sum(m["wall_seconds"] for m in ms),
                "trak_seconds": sum(s["wall_seconds"] for s in stores[size]) + sum(score_walls[size]),
                "proj_dim": stores[size][0]["proj_dim"],
            }
        )
    table = pd.DataFrame(rows)
    ref = table.set_index("size").loc[reference, "train_flops_per_model"]
    table["compute_ratio"] = ref / table["train_flops_per_model"]
    return table.sort_values("train_flops_per_model", ascending=False).reset_index(drop=True)


def lds_table(datamodels: dict[str, np.ndarray], masks: np.ndarray, actual: np.ndarray, compute: pd.DataFrame, reference: str, n_boot: int, ci: float) -> pd.DataFrame:
    """LDS of every size's datamodel against the reference's subset outputs, with a bootstrap
    interval over targets, its compute ratio and its LDS relative to the reference's."""
    rows = []
    for size, tau in datamodels.items():
        per_target = lds_per_target(predicted_outputs(tau, masks), actual)
        mean, lo, hi = stats.mean_ci(per_target, n_boot, ci)
        rows.append({"size": size, "lds": mean, "lds_lo": lo, "lds_hi": hi, "targets": int(np.isfinite(per_target).sum())})
    table = pd.DataFrame(rows).merge(compute[["size", "compute_ratio", "params"]], on="size")
    table["relative_to_reference"] = table["lds"] / table.set_index("size").loc[reference, "lds"]
    return table.sort_values("compute_ratio").reset_index(drop=True)


def lds_vs_checkpoints(scores: dict[str, list[np.ndarray]], qs: dict[str, list[np.ndarray]], q_term: bool, masks: np.ndarray, actual: np.ndarray) -> pd.DataFrame:
    """LDS of the datamodel averaged over the first 1, 2, ..., M checkpoints of every size."""
    rows = []
    for size, per_ckpt in scores.items():
        for m in range(1, len(per_ckpt) + 1):
            tau = datamodel(per_ckpt[:m], qs[size][:m], q_term)
            rows.append({"size": size, "checkpoints": m, "lds": float(np.nanmean(lds_per_target(predicted_outputs(tau, masks), actual)))})
    return pd.DataFrame(rows)


def overlap_table(datamodels: dict[str, np.ndarray], reference: str, k: int) -> pd.DataFrame:
    """Mean fraction of each target's k most positive (top) and most negative (bottom) training
    examples that a size shares with the reference, and the chance level k / n_train."""
    ref = datamodels[reference]
    rows = []
    for size, tau in datamodels.items():
        if size == reference:
            continue
        for end, largest in (("top", True), ("bottom", False)):
            shared = top_k_overlap(tau, ref, k, largest)
            rows.append({"size": size, "end": end, "k": k, "overlap": float(shared.mean()), "chance": k / tau.shape[0]})
    return pd.DataFrame(rows)


def rank_table(datamodels: dict[str, np.ndarray]) -> pd.DataFrame:
    """Mean over targets of the Spearman correlation between two sizes' weights, for every pair."""
    rows = []
    for a, ta in datamodels.items():
        for b, tb in datamodels.items():
            rows.append({"size_a": a, "size_b": b, "spearman": float(np.nanmean(rank_correlation(ta, tb)))})
    return pd.DataFrame(rows)
