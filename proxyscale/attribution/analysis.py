"""Tables of the attribution-across-scale experiment (the paper's section 3.1, Figures 6 and 7).

Inputs are the per-checkpoint score files and datamodel matrices of every size (n_train, n_targets;
read a block of training rows at a time, so n_train is bounded by disk, not memory), the LDS subsets'
masks (m, n_train) and the reference's outputs on them (m, n_targets), and the per-size compute table
(:func:`proxyscale.datamodels.cost.size_costs`). Outputs are tidy data frames and the setup summary the
figures and report read.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from proxyscale import stats
from proxyscale.artifacts import NpyRows
from proxyscale.attribution.dataset import describe
from proxyscale.attribution.lds import lds_per_target, predicted_outputs
from proxyscale.datamodels.datamodel import BLOCK_BYTES, CheckpointScores, TopK, datamodel, overlap, rank_correlation
from proxyscale.datamodels.projectors import PROJECTIONS


def size_predictions(scores: CheckpointScores, masks: np.ndarray) -> dict[tuple[bool, int], np.ndarray]:
    """A size's datamodel predictions on the LDS subsets, (n_subsets, n_targets) each, for every variant
    ``(q_term, m)``: averaged over its first m checkpoints, without and with the Q term; in one pass over
    blocks of training rows (the datamodel is linear in them)."""
    masks = masks.astype(np.float32)
    out = {}
    for rows, s, q in scores.blocks():
        for m in range(1, len(s) + 1):
            for q_term in (False, True):
                part = predicted_outputs(datamodel(s[:m], q[:m], q_term), masks[:, rows])
                out[q_term, m] = out[q_term, m] + part if (q_term, m) in out else part
    return out


def trak_ranks(stores: dict[str, list[dict]]) -> dict[str, int]:
    """Per size, the fewest dimensions a checkpoint's TRAK inverse spans (its store summaries'): the
    projection size, or fewer where exact gradients span fewer (:func:`proxyscale.datamodels.store.span_inverse`);
    a store scored before this was recorded inverted all of its ``proj_dim``."""
    return {size: min(s.get("rank", s["proj_dim"]) for s in summaries) for size, summaries in stores.items()}


def lds_table(
    predictions: dict[str, dict[tuple[bool, int], np.ndarray]],
    configured: bool,
    actual: np.ndarray,
    compute: pd.DataFrame,
    reference: str,
    n_boot: int,
    ci: float,
) -> pd.DataFrame:
    """LDS of every size's datamodel (all its checkpoints; ``predictions`` from :func:`size_predictions`),
    without and with the Q term (``configured`` marks the one the workflow uses), against the reference's
    subset outputs: a bootstrap interval over targets, the size's compute ratio and its LDS relative to
    the reference's datamodel of the same variant."""
    rows = []
    for q_term in (False, True):
        for size, variants in predictions.items():
            m = max(mm for _, mm in variants)
            per_target = lds_per_target(variants[q_term, m], actual)
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
    predictions: dict[str, dict[tuple[bool, int], np.ndarray]], configured: bool, actual: np.ndarray
) -> pd.DataFrame:
    """LDS of the datamodel averaged over the first 1, 2, ..., M checkpoints of every size, without and
    with the Q term (``configured`` marks the workflow's)."""
    rows = []
    for q_term in (False, True):
        for size, variants in predictions.items():
            for m in sorted(mm for qq, mm in variants if qq == q_term):
                lds = float(np.nanmean(lds_per_target(variants[q_term, m], actual)))
                rows.append(
                    {"size": size, "q_term": q_term, "configured": q_term == configured, "checkpoints": m, "lds": lds}
                )
    return pd.DataFrame(rows)


@dataclass
class Extremes:
    """What the reports read of a datamodel matrix: each target's ``k`` most positive (``top``) and most
    negative (``bottom``) training rows, strongest first, and its weights on a seeded sample of rows."""

    top: np.ndarray
    bottom: np.ndarray
    sample: np.ndarray
    n_train: int


def datamodel_extremes(path, k: int, rows: np.ndarray) -> Extremes:
    """:class:`Extremes` of the datamodel ``.npy`` at ``path``, read a block of rows at a time; ``rows``
    (sorted) are the sampled rows (:func:`proxyscale.datamodels.datamodel.sample_rows`)."""
    tau = NpyRows(path)
    n, columns = tau.shape
    top, bottom = TopK(min(k, n), columns), TopK(min(k, n), columns, largest=False)
    sample = []
    for start, block in tau.blocks(tau.rows_within(BLOCK_BYTES)):
        top.add(start, block)
        bottom.add(start, block)
        inside = rows[(rows >= start) & (rows < start + len(block))]
        sample.append(block[inside - start])
    return Extremes(top.indices(), bottom.indices(), np.concatenate(sample), n)


def overlap_table(extremes: dict[str, Extremes], reference: str, k: int) -> pd.DataFrame:
    """Mean fraction of each target's k most positive (top) and most negative (bottom) training
    examples that a size shares with the reference, and the chance level k / n_train (no rows when
    the reference is the only size)."""
    ref = extremes[reference]
    rows = []
    for size, ext in extremes.items():
        if size == reference:
            continue
        for end in ("top", "bottom"):
            shared = overlap(getattr(ext, end)[:k], getattr(ref, end)[:k])
            rows.append({"size": size, "end": end, "k": k, "overlap": float(shared.mean()), "chance": k / ext.n_train})
    return pd.DataFrame(rows, columns=["size", "end", "k", "overlap", "chance"])


def rank_table(extremes: dict[str, Extremes]) -> pd.DataFrame:
    """Mean over targets of the Spearman correlation between two sizes' weights (on the sampled rows),
    for every pair."""
    rows = []
    for a, ea in extremes.items():
        for b, eb in extremes.items():
            rows.append(
                {"size_a": a, "size_b": b, "spearman": float(np.nanmean(rank_correlation(ea.sample, eb.sample)))}
            )
    return pd.DataFrame(rows)


def mean_target_accuracy(metas: dict[str, list[dict]]) -> dict[str, float | None]:
    """Per size, its checkpoints' mean top-1 accuracy on the targets (None for language models)."""
    return {
        size: None if ms[0]["target_accuracy"] is None else float(np.mean([m["target_accuracy"] for m in ms]))
        for size, ms in metas.items()
    }


def example_texts(train, targets, tokenizer, rows: np.ndarray, shown: list[int]) -> dict[int, dict[int, str]]:
    """Language setting: the text of the training windows at ``rows`` and of the scored continuation of
    the ``shown`` targets (only what the figure prints is read and decoded)."""
    rows = np.unique(rows)
    tokens, _ = train.take(rows)
    inputs, labels = targets.take(np.asarray(shown))
    return {
        "train": {int(r): tokenizer.decode(list(t)) for r, t in zip(rows, tokens)},
        "target": {int(i): tokenizer.decode(list(t[m])) for i, t, m in zip(shown, inputs, labels)},
    }


def setup_summary(
    task_spec: dict,
    n_train: int,
    n_targets: int,
    reference: str,
    compute: pd.DataFrame,
    q_term: bool,
    masks: np.ndarray,
    subset_repetition: float,
    projection_warning: str | None,
) -> dict:
    """What the report says of the run: setting, examples, checkpoints and their training examples,
    projection (of the sizes projected: those with exact gradients are named in the LDS section; and a
    warning when its size is too large for the training set), Q term, LDS subsets and the retrained
    reference's passes over each."""
    return {
        "setting": task_spec["setting"],
        "description": describe(task_spec),
        "reference": reference,
        "n_train": n_train,
        "n_targets": n_targets,
        "checkpoints": int(compute.set_index("size").loc[reference, "checkpoints"]),
        "checkpoint_examples": {s: int(n) for s, n in zip(compute["size"], compute["examples"])},
        "checkpoint_passes": float(compute.set_index("size").loc[reference, "repetition"]),
        "proj_dim": int(compute["proj_dim"].max()),
        "projection": " and ".join(sorted(set(compute["projection"]) - {PROJECTIONS["ExactGradients"]})) or "no",
        "projection_warning": projection_warning,
        "q_term": q_term,
        "subsets": len(masks),
        "alpha": float(masks.mean()),
        "subset_repetition": subset_repetition,
    }
