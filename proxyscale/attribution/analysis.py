"""Tables of the attribution-across-scale experiment (the paper's section 3.1, Figures 6 and 7).

Inputs are plain arrays: datamodel matrices per size (n_train, n_targets), per-checkpoint scores,
the LDS subsets' masks (m, n_train) and the reference's outputs on them (m, n_targets), and the
per-size compute table (:func:`proxyscale.datamodels.cost.size_costs`). Outputs are tidy data frames
and the setup summary the figures and report read.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from proxyscale import stats
from proxyscale.attribution.dataset import describe
from proxyscale.attribution.lds import lds_per_target, predicted_outputs
from proxyscale.datamodels.datamodel import datamodel, rank_correlation, top_k_overlap


def datamodel_variants(scores: dict[str, list[np.ndarray]], qs: dict[str, list[np.ndarray]]) -> dict[bool, dict]:
    """Every size's datamodel both ways, from the same per-checkpoint scores: ``{q_term: {size: tau}}``
    (without the out-to-loss term Q, as the paper does for language models, and with it)."""
    return {q: {size: datamodel(per_ckpt, qs[size], q) for size, per_ckpt in scores.items()} for q in (False, True)}


def lds_table(
    variants: dict[bool, dict[str, np.ndarray]],
    configured: bool,
    masks: np.ndarray,
    actual: np.ndarray,
    compute: pd.DataFrame,
    reference: str,
    n_boot: int,
    ci: float,
) -> pd.DataFrame:
    """LDS of every size's datamodel, without and with the Q term (``configured`` marks the one the
    workflow uses), against the reference's subset outputs: a bootstrap interval over targets, the
    size's compute ratio and its LDS relative to the reference's datamodel of the same variant."""
    rows = []
    for q_term, datamodels in variants.items():
        for size, tau in datamodels.items():
            per_target = lds_per_target(predicted_outputs(tau, masks), actual)
            mean, lo, hi = stats.mean_ci(per_target, n_boot, ci)
            rows.append(
                {
                    "size": size,
                    "q_term": q_term,
                    "configured": q_term == configured,
                    "lds": mean,
                    "lds_lo": lo,
                    "lds_hi": hi,
                    "targets": int(np.isfinite(per_target).sum()),
                }
            )
    table = pd.DataFrame(rows).merge(compute[["size", "compute_ratio", "params"]], on="size")
    reference_lds = table[table["size"] == reference].set_index("q_term")["lds"]
    table["relative_to_reference"] = table["lds"] / table["q_term"].map(reference_lds)
    return table.sort_values(["q_term", "compute_ratio"]).reset_index(drop=True)


def lds_vs_checkpoints(
    scores: dict[str, list[np.ndarray]],
    qs: dict[str, list[np.ndarray]],
    configured: bool,
    masks: np.ndarray,
    actual: np.ndarray,
) -> pd.DataFrame:
    """LDS of the datamodel averaged over the first 1, 2, ..., M checkpoints of every size, without and
    with the Q term (``configured`` marks the workflow's)."""
    rows = []
    for q_term in (False, True):
        for size, per_ckpt in scores.items():
            for m in range(1, len(per_ckpt) + 1):
                tau = datamodel(per_ckpt[:m], qs[size][:m], q_term)
                lds = float(np.nanmean(lds_per_target(predicted_outputs(tau, masks), actual)))
                rows.append(
                    {"size": size, "q_term": q_term, "configured": q_term == configured, "checkpoints": m, "lds": lds}
                )
    return pd.DataFrame(rows)


def overlap_table(datamodels: dict[str, np.ndarray], reference: str, k: int) -> pd.DataFrame:
    """Mean fraction of each target's k most positive (top) and most negative (bottom) training
    examples that a size shares with the reference, and the chance level k / n_train (no rows when
    the reference is the only size)."""
    ref = datamodels[reference]
    rows = []
    for size, tau in datamodels.items():
        if size == reference:
            continue
        for end, largest in (("top", True), ("bottom", False)):
            shared = top_k_overlap(tau, ref, k, largest)
            rows.append({"size": size, "end": end, "k": k, "overlap": float(shared.mean()), "chance": k / tau.shape[0]})
    return pd.DataFrame(rows, columns=["size", "end", "k", "overlap", "chance"])


def rank_table(datamodels: dict[str, np.ndarray]) -> pd.DataFrame:
    """Mean over targets of the Spearman correlation between two sizes' weights, for every pair."""
    rows = []
    for a, ta in datamodels.items():
        for b, tb in datamodels.items():
            rows.append({"size_a": a, "size_b": b, "spearman": float(np.nanmean(rank_correlation(ta, tb)))})
    return pd.DataFrame(rows)


def mean_target_accuracy(metas: dict[str, list[dict]]) -> dict[str, float | None]:
    """Per size, its checkpoints' mean top-1 accuracy on the targets (None for language models)."""
    return {
        size: None if ms[0]["target_accuracy"] is None else float(np.mean([m["target_accuracy"] for m in ms]))
        for size, ms in metas.items()
    }


def example_texts(arrays: dict, tokenizer) -> dict[str, list[str]]:
    """Language setting: every training window's text and every target's scored continuation."""
    return {
        "train": [tokenizer.decode(list(t)) for t in arrays["train_inputs"]],
        "target": [tokenizer.decode(list(t[m])) for t, m in zip(arrays["target_inputs"], arrays["target_labels"])],
    }


def setup_summary(
    task_spec: dict,
    arrays: dict,
    reference: str,
    compute: pd.DataFrame,
    q_term: bool,
    masks: np.ndarray,
    subset_repetition: float,
    projection_warning: str | None,
) -> dict:
    """What the report says of the run: setting, examples, checkpoints and their training examples,
    projection (and a warning when its size is too large for the training set), Q term, LDS subsets
    and the retrained reference's passes over each."""
    return {
        "setting": task_spec["setting"],
        "description": describe(task_spec),
        "reference": reference,
        "n_train": len(arrays["train_inputs"]),
        "n_targets": len(arrays["target_inputs"]),
        "checkpoints": int(compute.set_index("size").loc[reference, "checkpoints"]),
        "checkpoint_examples": {s: int(n) for s, n in zip(compute["size"], compute["examples"])},
        "checkpoint_passes": float(compute.set_index("size").loc[reference, "repetition"]),
        "proj_dim": int(compute["proj_dim"].max()),
        "projection": " and ".join(sorted(set(compute["projection"]))),
        "projection_warning": projection_warning,
        "q_term": q_term,
        "subsets": len(masks),
        "alpha": float(masks.mean()),
        "subset_repetition": subset_repetition,
    }
