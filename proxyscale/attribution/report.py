"""Markdown report of the attribution-across-scale experiment: LDS tables, overlaps, cost, figures.

The report is a list of sections, each built by one function from the analysis tables
(:mod:`proxyscale.attribution.analysis`); ``figures`` maps figure keys to paths relative to the report.
"""

from __future__ import annotations

import pandas as pd

from proxyscale.datamodels.cost import SIZE_COLUMNS
from proxyscale.markdown import md_table, with_ci

COST_COLUMNS = [
    *SIZE_COLUMNS,
    "train_flops",
    "trak_flops",
    "train_seconds",
    "trak_seconds",
    "proj_dim",
    "projection",
]


def _count(n: int, noun: str) -> str:
    """``n`` and ``noun``, plural unless ``n`` is 1 (a smoke overlay trains one checkpoint)."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _introduction(setup: dict, pct: str) -> list[str]:
    return [
        "# Data attribution across scale: do proxy datamodels predict the reference?",
        "",
        f"Setting **{setup['setting']}** ({setup['description']}); {setup['n_train']} training and "
        f"{setup['n_targets']} target examples. Every size trains "
        f"{_count(setup['checkpoints'], 'checkpoint')} (seeds), "
        + _protocol(setup)
        + f"; TRAK (traker, {setup['projection']} projection of size up to {setup['proj_dim']}, a new one per "
        "checkpoint, "
        f"Q term {'on' if setup['q_term'] else 'off'}, as configured) gives one datamodel per size, averaged over its "
        f"checkpoints. The reference **{setup['reference']}** was retrained on {setup['subsets']} random "
        f"subsets of {setup['alpha']:.0%} of the training set ({setup['subset_repetition']:.3g} passes over each); "
        "the LDS of a datamodel is the mean over targets "
        "of the Spearman correlation between its predicted outputs and the reference's actual outputs "
        f"(margins) across subsets. Intervals: {pct} bootstrap over targets.",
        "",
        *_projection_warning(setup),
    ]


def _projection_warning(setup: dict) -> list[str]:
    return [f"**Warning:** {setup['projection_warning']}.", ""] if setup["projection_warning"] else []


def variant_name(q_term: bool, configured: bool) -> str:
    """A table column's name for one variant of the datamodel, the configured one marked."""
    return f"{'with' if q_term else 'without'} Q" + (" (configured)" if configured else "")


def _protocol(setup: dict) -> str:
    """How the checkpoints train: the vision setting keeps the epoch recipe; language models follow
    the paper's Chinchilla protocol on random subsets."""
    if setup["setting"] == "vision":
        return (
            f"each on the full training set for {setup['checkpoint_passes']:g} epochs (the vision setting keeps "
            "an epoch recipe; the Chinchilla protocol is the language setting's)"
        )
    windows = ", ".join(f"{s}: {n}" for s, n in setup["checkpoint_examples"].items())
    return (
        "each Chinchilla-optimally (tokens = tokens_per_param x params) in one pass over its own random "
        f"subset of the training windows ({windows} windows)"
    )


def projection_notes(compute: pd.DataFrame, proj_dim: int) -> list[str]:
    """Per size with no more parameters than ``trak.proj_dim`` (``proj_dim``): the dimensions its TRAK
    features have and span (from its stores), and why."""
    return [
        f"- **{r.size}**: {r.params:,} parameters, not more than trak.proj_dim {proj_dim}, so TRAK uses its exact "
        f"gradients ({r.proj_dim:,} dimensions: min(k, parameters)) rather than a random projection, which "
        "could only lose information. "
        + (
            f"They span {r.trak_rank:,} of them (at least, over its checkpoints; the weights of an image pixel "
            "constant over the training set get identical gradients), so Phi^T Phi is singular and TRAK inverts "
            "it on that span."
            if r.trak_rank < r.proj_dim
            else "Phi^T Phi is inverted on all of them."
        )
        for r in compute[compute["params"] <= proj_dim].itertuples()
    ]


def _dims(dims: pd.Series, params: int) -> str:
    """A size's TRAK dimensions as the LDS table shows them: k, or for exact gradients their span of p."""
    if dims["proj_dim"] < params:
        return f"{dims['proj_dim']}"
    return f"{dims['trak_rank']} of {params} (exact)"


def _span(compute: pd.DataFrame) -> str:
    """The range of training compute the sizes cover: the smallest's compute ratio to the reference."""
    smallest = compute.loc[compute["compute_ratio"].idxmax()]
    return f"{smallest['compute_ratio']:,.0f}x (the smallest, {smallest['size']}, to the reference)"


def _lds(
    lds: pd.DataFrame, lds_m: pd.DataFrame, compute: pd.DataFrame, accuracy: dict, pct: str, figures, proj_dim: int
) -> list[str]:
    """Figure 6's table (LDS of every size, without and with the Q term, with its compute ratio and the
    dimensions of its TRAK features) and LDS as checkpoints are averaged, both variants side by side."""
    configured = bool(lds.loc[lds["configured"], "q_term"].iloc[0])
    wide = None
    for q_term, block in lds.groupby("q_term"):
        column = f"LDS {variant_name(q_term, q_term == configured)} [{pct} CI]"
        part = block.set_index("size")
        part = part.assign(**{column: [with_ci(r.lds, r.lds_lo, r.lds_hi) for r in part.itertuples()]})[[column]]
        wide = part if wide is None else wide.join(part)
    mine = lds[lds["configured"]].set_index("size").loc[list(compute["size"])]
    dims = compute.set_index("size")[["proj_dim", "trak_rank"]]
    notes = projection_notes(compute, proj_dim)
    headline = (
        wide.loc[mine.index]
        .assign(
            params=mine["params"],
            compute_ratio=mine["compute_ratio"].map(lambda r: f"{r:.1f}x"),
            trak_dims=[_dims(dims.loc[s], s_params) for s, s_params in zip(mine.index, mine["params"])],
            relative_to_reference=mine["relative_to_reference"].map("{:.2f}".format),
            accuracy=[("-" if accuracy.get(s) is None else f"{accuracy[s]:.3f}") for s in mine.index],
            targets=mine["targets"],
        )
        .reset_index()
    )
    order = [
        "size",
        "params",
        "compute_ratio",
        "trak_dims",
        *wide.columns,
        "relative_to_reference",
        "accuracy",
        "targets",
    ]
    by_m = pd.DataFrame(
        {
            f"{size} {variant_name(q, q == configured)}": lds_m[
                (lds_m["size"] == size) & (lds_m["q_term"] == q)
            ].set_index("checkpoints")["lds"]
            for size in compute["size"]
            for q in (configured, not configured)
        }
    ).rename_axis("checkpoints")
    return [
        "## LDS against compute (Figure 6)",
        "",
        "Both variants of each datamodel come from the same per-checkpoint scores: without the out-to-loss "
        "term Q (the paper's choice for language models, eq. 17) and with it (traker's default). The "
        "configured one (`trak.q_term`) is the one every other table, figure and selection uses; "
        "relative_to_reference compares it with the reference's datamodel of the same variant. The sizes span "
        f"{_span(compute)} of training compute per model; trak_dims is the dimension of each size's TRAK features "
        f"(trak.proj_dim {proj_dim}, or the span of its exact gradients where it has no more parameters).",
        "",
        md_table(headline[order]),
        "",
        *([*notes, ""] if notes else []),
        f"![Figure 6: LDS against compute ratio]({figures['fig_lds']})",
        "",
        "## LDS as checkpoints are averaged",
        "",
        md_table(by_m.reset_index()),
        "",
        f"![LDS against number of checkpoints]({figures['fig_m']})",
        "",
    ]


def _agreement(overlap: pd.DataFrame, rank: pd.DataFrame, order: list[str], figures: dict[str, str]) -> list[str]:
    """Figure 7's top-k and bottom-k overlap with the reference, and the rank correlation between sizes."""
    if overlap.empty:
        return [
            "## Do proxies rank the same training examples highest? (Figure 7)",
            "",
            "The reference is the only size: no proxy to compare.",
            "",
            f"![top examples]({figures['fig_examples']})",
            "",
        ]
    k = overlap["k"].iloc[0]
    overlap_wide = overlap.pivot(index="size", columns="end", values="overlap").reset_index()
    rank_wide = rank.pivot(index="size_a", columns="size_b", values="spearman").loc[order, order]
    return [
        "## Do proxies rank the same training examples highest? (Figure 7)",
        "",
        f"Share of each target's top-{k} (most helpful) and bottom-{k} "
        f"(most harmful) training examples a proxy shares with the reference's datamodel; chance is "
        f"{overlap['chance'].iloc[0]:.4f}.",
        "",
        md_table(overlap_wide),
        "",
        f"![Figure 7: top-k overlap]({figures['fig_overlap']})",
        "",
        "Mean per-target Spearman correlation of datamodel weights between sizes:",
        "",
        md_table(rank_wide.reset_index().rename(columns={"size_a": "size"}), floatfmt=".2f"),
        "",
        f"![rank correlation]({figures['fig_rank']})",
        "",
        f"![top examples per size]({figures['fig_examples']})",
        "",
    ]


def _compute(compute: pd.DataFrame) -> list[str]:
    cost = compute.assign(
        train_flops=compute["train_flops"].map("{:.3g}".format),
        trak_flops=compute["trak_flops"].map("{:.3g}".format),
        train_seconds=compute["train_seconds"].map("{:.1f}".format),
        trak_seconds=compute["trak_seconds"].map("{:.1f}".format),
        compute_ratio=compute["compute_ratio"].map("{:.1f}x".format),
        repetition=compute["repetition"].map("{:.3g}x".format),
    )[COST_COLUMNS]
    return [
        "## Compute",
        "",
        "Training FLOPs: 3 x forward FLOPs x examples seen per checkpoint (for language models 6 x params x "
        "tokens), summed over the checkpoints; the compute ratio compares one checkpoint with one reference "
        "checkpoint. TRAK FLOPs (cost model): per "
        "training and target example a per-example gradient (3 x forward) and its projection "
        "(2 x params x projection size), plus finalizing (4 n k^2 + k^3) and scoring (2 n k targets), per "
        "checkpoint, and the forward pass per training example that computes Q (always here: both variants "
        "are reported). Seconds are measured wall time of the jobs' training, featurizing (all shards) and "
        "scoring. "
        "Examples: the training examples of one checkpoint (all of them for vision; for language models its "
        "own random subset of its Chinchilla budget). Repetition: passes of each checkpoint over them (vision: "
        "its epochs; language models: one).",
        "",
        md_table(cost),
        "",
    ]


def lds_report(
    lds: pd.DataFrame,
    compute: pd.DataFrame,
    lds_m: pd.DataFrame,
    overlap: pd.DataFrame,
    rank: pd.DataFrame,
    accuracy: dict,
    setup: dict,
    ci: float,
    figures: dict[str, str],
    proj_dim: int,
) -> str:
    """Markdown of the attribution-across-scale experiment; ``setup`` describes the run, ``proj_dim`` is
    ``trak.proj_dim``."""
    pct = f"{100 * ci:.0f}%"
    parts = [
        *_introduction(setup, pct),
        *_lds(lds, lds_m, compute, accuracy, pct, figures, proj_dim),
        *_agreement(overlap, rank, list(compute["size"]), figures),
        *_compute(compute),
    ]
    return "\n".join(parts)
