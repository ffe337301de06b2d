"""Tables of the dataset-selection-across-scale experiment (the paper's section 3.2, Figure 8).

Inputs are the retraining results (one row per selection, seed and holdout example, from
:func:`proxyscale.selection.retrain.retrain` with ``target`` and ``method`` columns added), the
compute table of the proxies (:func:`proxyscale.datamodels.cost.size_costs`) and the subsets.
A selection is judged on its own target task's holdout examples, by the mean over its retraining
seeds and the examples. Intervals are nested bootstraps (:func:`proxyscale.stats.nested_mean_ci`) that
resample both: the seeds within each selection and the holdout examples. The comparison with random
selection is paired by example (the same resampled examples on both sides), its seeds resampled on
each side, so its interval covers the seed noise of both retrainings as well as the examples'.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from proxyscale import stats
from proxyscale.datamodels.cost import SIZE_COLUMNS
from proxyscale.selection.methods import selected_indices
from proxyscale.selection.registry import parse_method

METRICS = ("loss", "token_accuracy")


def seed_matrices(retrains: pd.DataFrame, metric: str) -> dict[tuple[str, str], pd.DataFrame]:
    """Per (target, method): ``metric`` on its own target's holdout examples, one row per retraining seed
    and one column per example."""
    own = retrains[retrains["holdout_task"] == retrains["target"]]
    return {
        key: block.pivot(index="seed", columns="example_id", values=metric)
        for key, block in own.groupby(["target", "method"], sort=False)
    }


def _interval(prefix: str, estimate: tuple[float, float, float]) -> dict:
    return dict(zip((prefix, f"{prefix}_lo", f"{prefix}_hi"), estimate))


def results_table(retrains: pd.DataFrame, compute: pd.DataFrame, n_boot: int, ci: float) -> pd.DataFrame:
    """Per (target, method): holdout loss and token accuracy with intervals over seeds and examples, their
    paired differences from random selection (``loss_delta`` negative: better than random; ``beats_random``
    when its whole interval is below 0), the seeds on each side, and for DsDm and Bot-DsDm the size that
    selected and its compute ratio."""
    matrices = {metric: seed_matrices(retrains, metric) for metric in METRICS}
    ratio = compute.set_index("size")["compute_ratio"]
    rows = []
    for target, method in matrices["loss"]:
        kind, size = parse_method(method)
        compared = method != "random" and (target, "random") in matrices["loss"]
        intervals = {}
        for metric in METRICS:
            mine = matrices[metric][target, method]
            intervals |= _interval(metric, stats.nested_mean_ci([mine], [1.0], n_boot, ci))
            random = matrices[metric][target, "random"].reindex(columns=mine.columns) if compared else None
            delta = stats.nested_mean_ci([mine, random], [1.0, -1.0], n_boot, ci) if compared else (np.nan,) * 3
            intervals |= _interval(f"{metric}_delta", delta)
        rows.append(
            {
                "target": target,
                "method": method,
                "kind": kind,
                "size": size,
                "compute_ratio": float(ratio[size]) if size is not None else np.nan,
                **intervals,
                "beats_random": bool(intervals["loss_delta_hi"] < 0),
                "seeds": len(matrices["loss"][target, method]),
                "random_seeds": len(matrices["loss"][target, "random"]) if compared else 0,
                "examples": matrices["loss"][target, method].shape[1],
            }
        )
    return pd.DataFrame(rows)


def cost_table(compute: pd.DataFrame, retrains: pd.DataFrame) -> pd.DataFrame:
    """Per size: the cost of selecting with it (training its M checkpoints on their subsets of the pool,
    plus TRAK) next to the cost of training one reference model on a selection, in FLOPs and measured
    seconds."""
    runs = retrains.drop_duplicates(["target", "method", "seed"])
    ref_flops, ref_seconds = float(runs["train_flops"].mean()), float(runs["train_seconds"].mean())
    table = compute[[*SIZE_COLUMNS, "train_flops", "trak_flops", "train_seconds", "trak_seconds"]].copy()
    table["selection_flops"] = table["train_flops"] + table["trak_flops"]
    table["selection_seconds"] = table["train_seconds"] + table["trak_seconds"]
    table["reference_train_flops"] = ref_flops
    table["reference_train_seconds"] = ref_seconds
    table["selection_over_reference"] = table["selection_flops"] / ref_flops
    return table


def composition_table(
    subsets: dict[tuple[str, str], pd.DataFrame], train_source: np.ndarray, sources: list[str]
) -> pd.DataFrame:
    """Share of each source among the selected pool examples of every (target, method), and in the pool."""

    def shares(indices):
        counts = np.bincount(train_source[indices], minlength=len(sources))
        return dict(zip(sources, counts / counts.sum()))

    rows = [{"target": "-", "method": "pool", **shares(np.arange(len(train_source)))}]
    for (target, method), frame in subsets.items():
        rows.append({"target": target, "method": method, **shares(selected_indices(frame))})
    return pd.DataFrame(rows)


def setup_summary(
    data,
    retrains: pd.DataFrame,
    subsets: dict,
    compute: pd.DataFrame,
    reference: str,
    q_term: bool,
    projection_warning: str | None,
) -> dict:
    """What the report says of the run: pool, targets, checkpoints and their subsets, projection (and a
    warning when its size is too large for the pool), the datamodel variant DsDm selected with (Q term
    on or off), selection size (and its share of the pool) and the retrained reference's repetition of it."""
    first = next(iter(subsets.values()))
    k = int(first["selected"].sum())
    ref = compute.set_index("size").loc[reference]
    return {
        "n_pool": len(data.train),
        "window": data.train.window,
        "sources": data.task["pool_sources"],
        "targets": data.task["targets"],
        "n_targets": int((data["target_task"] == 0).sum()),
        "n_holdout": int((data["holdout_task"] == 0).sum()),
        "checkpoints": int(ref["checkpoints"]),
        "checkpoint_examples": {s: int(n) for s, n in zip(compute["size"], compute["examples"])},
        "proj_dim": int(compute["proj_dim"].max()),
        "projection": " and ".join(sorted(set(compute["projection"]))),
        "projection_warning": projection_warning,
        "q_term": q_term,
        "fraction": k / len(data.train),
        "k": k,
        "retrain_repetition": float(retrains["repetition"].max()),
        "reference": reference,
    }
