"""What a size's datamodel costs: training its M checkpoints and running TRAK on them.

Training FLOPs come from the checkpoints' summaries (:mod:`proxyscale.training.fit`), TRAK FLOPs from
the cost model :func:`trak_flops`, wall times (featurizing and scoring) from the stores' summaries.
Both experiments that build datamodels (attribution and selection) report these per size, with the
compute ratio of each size's training to the reference's.
"""

from __future__ import annotations

import pandas as pd

from proxyscale.datamodels.projectors import PROJECTIONS
from proxyscale.datamodels.store import store_summary
from proxyscale.training.checkpoints import checkpoint_meta

# The columns of :func:`size_costs` that describe a size's checkpoints, first in every cost table.
SIZE_COLUMNS = ["size", "params", "checkpoints", "examples", "repetition", "compute_ratio"]


def trak_flops(
    forward_flops: float, n_params: int, proj_dim: int, n_train: int, n_targets: int, with_q: bool = False
) -> float:
    """Estimated FLOPs of TRAK for one checkpoint: the paper's cost model (appendix A.3.2), plus the
    forward pass per training example that computes Q when it is computed (``with_q``).

    Per example (training and target): a per-example gradient (forward plus backward, 3x the forward
    FLOPs) and its projection (2 x params x proj_dim). Then finalizing (Phi^T Phi and
    Phi (Phi^T Phi)^-1: 4 n k^2, plus k^3 for the inverse) and scoring (2 n k targets).
    """
    k = proj_dim
    per_example = 3.0 * forward_flops + 2.0 * n_params * k
    finalize_and_score = 4.0 * n_train * k**2 + float(k) ** 3 + 2.0 * n_train * k * n_targets
    return (n_train + n_targets) * per_example + finalize_and_score + (n_train * forward_flops if with_q else 0.0)


def featurize_flops(forward_flops: float, n_params: int, proj_dim: int, rows: int, with_q: bool) -> float:
    """FLOPs of featurizing ``rows`` training examples (one shard): per example a per-example gradient
    (3 x forward), its projection (2 x params x k) and, ``with_q``, Q's forward; then the shard's partial
    Phi^T Phi (2 rows k^2)."""
    per_example = 3.0 * forward_flops + 2.0 * n_params * proj_dim + (forward_flops if with_q else 0.0)
    return rows * per_example + 2.0 * rows * proj_dim**2


def gather_flops(
    forward_flops: float, n_params: int, proj_dim: int, n_train: int, n_targets: int, columns: int
) -> float:
    """FLOPs of a checkpoint's gather: the targets' projected gradients, the inverse (k^3), the inverse
    times the targets' (or groups') gradients once (2 k^2 columns), and the scores (2 n k columns)."""
    k = proj_dim
    return (
        n_targets * (3.0 * forward_flops + 2.0 * n_params * k)
        + float(k) ** 3
        + 2.0 * k * k * columns
        + (2.0 * n_train * k * columns)
    )


def grouped(paths: list, sizes: list[str], per_size: int) -> dict[str, list]:
    """Paths listed size-major, ``per_size`` checkpoints each, as {size: its paths}."""
    return {s: list(paths[i * per_size : (i + 1) * per_size]) for i, s in enumerate(sizes)}


def checkpoint_costs(sizes: list[str], per_size: int, models: list, stores: list) -> tuple[dict, dict]:
    """Per size, its checkpoints' training summaries and TRAK store summaries (featurizing and scoring
    times included), read from their files (each list size-major): the inputs of :func:`size_costs`."""
    metas = {s: [checkpoint_meta(x) for x in paths] for s, paths in grouped(models, sizes, per_size).items()}
    summaries = {s: [store_summary(x) for x in paths] for s, paths in grouped(stores, sizes, per_size).items()}
    return metas, summaries


def size_costs(
    metas: dict[str, list[dict]],
    stores: dict[str, list[dict]],
    n_targets: int,
    reference: str,
) -> pd.DataFrame:
    """Per size: parameters, the training examples of one checkpoint and its passes over them
    (repetition), training FLOPs and wall time of its M checkpoints, TRAK FLOPs (cost
    model of :func:`trak_flops`) and measured featurize + scoring time, and the
    compute ratio (the reference's training FLOPs per model over the size's)."""
    rows = []
    for size, ms in metas.items():
        m0 = ms[0]
        trak = sum(
            trak_flops(m["forward_flops_per_example"], m["params"], s["proj_dim"], s["n_train"], n_targets, s["q"])
            for m, s in zip(ms, stores[size])
        )
        rows.append(
            {
                "size": size,
                "params": m0["params"],
                "checkpoints": len(ms),
                "examples": m0["examples"],
                "repetition": m0["repetition"],
                "train_flops_per_model": m0["flops"],
                "train_flops": sum(m["flops"] for m in ms),
                "trak_flops": trak,
                "train_seconds": sum(m["wall_seconds"] for m in ms),
                "trak_seconds": sum(s["wall_seconds"] + s["score_seconds"] for s in stores[size]),
                "proj_dim": stores[size][0]["proj_dim"],
                "projection": PROJECTIONS.get(stores[size][0]["projector"], stores[size][0]["projector"]),
            }
        )
    table = pd.DataFrame(rows)
    ref = table.set_index("size").loc[reference, "train_flops_per_model"]
    table["compute_ratio"] = ref / table["train_flops_per_model"]
    return table.sort_values("train_flops_per_model", ascending=False).reset_index(drop=True)
