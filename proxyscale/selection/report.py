"""Markdown report of the dataset-selection-across-scale experiment: findings, tables, cost, figures.

The report is a list of sections, each built by one function from the analysis tables
(:mod:`proxyscale.selection.analysis`); ``figures`` maps figure keys to paths relative to the report.
"""

from __future__ import annotations

import math

import pandas as pd

from proxyscale.datamodels.cost import SIZE_COLUMNS
from proxyscale.markdown import md_table, with_ci
from proxyscale.selection.registry import METHODS

COST_COLUMNS = [
    *SIZE_COLUMNS,
    "train_flops",
    "trak_flops",
    "selection_flops",
    "reference_train_flops",
    "selection_over_reference",
    "selection_seconds",
    "reference_train_seconds",
]


def seeds_note(seeds: int, random_seeds: int) -> str:
    """How many retraining seeds a difference from random rests on, and what its interval covers."""
    if min(seeds, random_seeds) > 1:
        return f"{seeds} vs {random_seeds} seeds; interval over seeds and holdout examples"
    single = " and ".join(side for side, n in (("this selection", seeds), ("random", random_seeds)) if n == 1)
    return (
        f"{seeds} vs {random_seeds} seeds; one seed for {single}, whose seed noise is therefore not measured: "
        "the interval covers the other side's seeds and the holdout examples only"
    )


def dsdm_findings(results: pd.DataFrame, reference: str) -> list[str]:
    """One sentence per target: does DsDm with the reference size beat random (on how many seeds each), and
    with which sizes."""
    lines = []
    for target, block in results.groupby("target", sort=False):
        dsdm = block[block["kind"] == "dsdm"].sort_values("compute_ratio")
        if dsdm["loss_delta"].isna().all():
            lines.append(f"- **{target}**: no random selection to compare with.")
            continue
        ref = dsdm[dsdm["size"] == reference]
        ref_text = (
            f"DsDm with the reference size ({reference}) changes holdout loss by "
            f"{with_ci(*ref[['loss_delta', 'loss_delta_lo', 'loss_delta_hi']].iloc[0], fmt='.3f')} "
            f"nats/token relative to random ({seeds_note(ref['seeds'].iloc[0], ref['random_seeds'].iloc[0])})"
            if len(ref)
            else "DsDm did not run with the reference size"
        )
        wins = [s for s, b in zip(dsdm["size"], dsdm["beats_random"]) if b]
        losses = [s for s, b in zip(dsdm["size"], dsdm["beats_random"]) if not b]
        verdict = f"beats random (interval below 0) with {', '.join(wins) or 'no size'}"
        if losses:
            verdict += f"; not with {', '.join(losses)}"
        lines.append(f"- **{target}**: {ref_text}. DsDm {verdict}.")
    return lines


def seeds_text(results: pd.DataFrame) -> str:
    """The retraining seeds per selection: the usual count, and the selections retrained with more
    (``selection.noise_seeds``: random and DsDm with the reference size)."""
    counts = results.drop_duplicates("method").set_index("method")["seeds"]
    usual = int(counts.min())
    more = counts[counts > usual]
    extra = "; ".join(f"{n} for {', '.join(block.index)}" for n, block in more.groupby(more, sort=True))
    return f"{usual} seed{'s' if usual > 1 else ''}" + (f" ({extra})" if extra else "")


def _introduction(setup: dict, results: pd.DataFrame, pct: str) -> list[str]:
    return [
        "# Dataset selection across scale: does DsDm with a proxy pick data that helps the reference?",
        "",
        f"Pool: {setup['n_pool']} windows of {setup['window']} tokens from {', '.join(setup['sources'])}. "
        f"Targets: {', '.join(setup['targets'])}, each split into {setup['n_targets']} target examples (used to "
        f"select) and {setup['n_holdout']} holdout examples (used to judge) that share no passage with them. "
        f"Every size trains {setup['checkpoints']} checkpoints, each Chinchilla-optimally (tokens = tokens_per_param "
        "x params) in one pass over its own random subset of the pool ("
        + ", ".join(f"{s}: {n} windows" for s, n in setup["checkpoint_examples"].items())
        + f"); TRAK ({setup['projection']} projection of size up to {setup['proj_dim']}, a new one per checkpoint) "
        "gives "
        "its datamodel of the pool for the target examples (output: mean margin of the continuation tokens), "
        f"averaged over checkpoints {'with' if setup['q_term'] else 'without'} the out-to-loss term Q "
        f"(trak.q_term: {str(setup['q_term']).lower()}): the variant DsDm and Bot-DsDm selected with. "
        f"Each method keeps {setup['k']} windows ({setup['fraction']:.0%} of the pool): "
        + ", ".join(f"{m.label} {m.description}" for m in METHODS.values())
        + f". The reference **{setup['reference']}** is trained from scratch "
        f"for its Chinchilla budget on each selection (passes over it: {setup['retrain_repetition']:.2g}) "
        f"with {seeds_text(results)} and scored on the holdout examples of the selection's "
        "target: loss is the mean cross-entropy of the continuation tokens, token accuracy the share of them the "
        f"model predicts by argmax, both averaged over seeds and examples. Intervals: {pct} nested bootstrap "
        "that resamples the retraining seeds (within each selection) and the holdout examples; the difference "
        "from random resamples the seeds of both sides and the same examples on both (paired by example), so "
        "it covers the seed noise of both retrainings as well as the examples'.",
        "",
        *([f"**Warning:** {setup['projection_warning']}.", ""] if setup["projection_warning"] else []),
    ]


def _target_table(block: pd.DataFrame, pct: str) -> pd.DataFrame:
    """One target's methods: compute ratio, holdout loss and token accuracy, and their differences from random."""

    def intervals(metric: str) -> list[str]:
        return [with_ci(*r, ".3f") for r in block[[metric, f"{metric}_lo", f"{metric}_hi"]].itertuples(index=False)]

    return pd.DataFrame(
        {
            "method": block["method"],
            "seeds": block["seeds"],
            "compute_ratio": block["compute_ratio"].map(lambda r: "-" if math.isnan(r) else f"{r:.1f}x"),
            f"holdout loss [{pct} CI]": intervals("loss"),
            "loss - random [CI]": intervals("loss_delta"),
            "token accuracy [CI]": intervals("token_accuracy"),
            "accuracy - random [CI]": intervals("token_accuracy_delta"),
        }
    )


def _results(results: pd.DataFrame, reference: str, pct: str, figures: dict[str, str]) -> list[str]:
    """Findings, Figure 8, and one table per target."""
    parts = [
        "## Findings",
        "",
        *dsdm_findings(results, reference),
        "",
        "## Holdout loss against proxy compute (Figure 8)",
        "",
        "Error bars are the intervals of the difference from random selection (over the retraining seeds of "
        "both sides and the holdout examples, paired by example), drawn around each point: a bar that does "
        "not reach the dashed random line is a difference that neither seed nor example noise explains.",
        "",
        f"![Figure 8: DsDm with proxies of every size]({figures['fig_dsdm']})",
        "",
    ]
    for target, block in results.groupby("target", sort=False):
        parts += [f"### Target {target}", "", md_table(_target_table(block, pct)), ""]
    return parts


def _cost(cost: pd.DataFrame) -> list[str]:
    flops = ("train_flops", "trak_flops", "selection_flops", "reference_train_flops")
    shown = cost.assign(
        compute_ratio=cost["compute_ratio"].map("{:.1f}x".format),
        **{c: cost[c].map("{:.3g}".format) for c in flops},
        **{c: cost[c].map("{:.1f}".format) for c in ("selection_seconds", "reference_train_seconds")},
        selection_over_reference=cost["selection_over_reference"].map("{:.2f}".format),
        repetition=cost["repetition"].map("{:.3g}x".format),
    )[COST_COLUMNS]
    return [
        "## Cost of selecting with each size",
        "",
        "Selection cost: training the size's checkpoints, each on its own random subset of the pool of "
        "`examples` windows, its Chinchilla budget (6 x params x tokens, i.e. 3 x forward FLOPs x windows "
        "seen), plus TRAK on the pool and the target examples (cost model of the attribution report), summed "
        "over checkpoints. The compute ratio is the reference's training FLOPs over the size's, per model. "
        "Reference training cost: one reference model trained on one selection. Seconds are measured wall "
        "time of the jobs. Repetition: passes of each checkpoint over its subset.",
        "",
        md_table(shown),
        "",
    ]


def _composition(composition: pd.DataFrame, figures: dict[str, str]) -> list[str]:
    return [
        "## What each method selected",
        "",
        "Share of each source among the selected pool examples (the pool row is the pool itself).",
        "",
        md_table(composition, floatfmt=".2f"),
        "",
        f"![composition of the selections]({figures['fig_composition']})",
        "",
    ]


def dsdm_report(
    results: pd.DataFrame,
    cost: pd.DataFrame,
    composition: pd.DataFrame,
    setup: dict,
    ci: float,
    figures: dict[str, str],
) -> str:
    """Markdown of the dataset-selection-across-scale experiment; ``setup`` describes the run."""
    pct = f"{100 * ci:.0f}%"
    parts = [
        *_introduction(setup, results, pct),
        *_results(results, setup["reference"], pct, figures),
        *_cost(cost),
        *_composition(composition, figures),
    ]
    return "\n".join(parts)
