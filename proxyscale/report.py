"""Markdown report of the scale-correlation experiment: tables of the analysis and its figures."""

from __future__ import annotations

import math

import pandas as pd


def md_table(df: pd.DataFrame, floatfmt: str = ".3f") -> str:
    """A GitHub-flavoured markdown table (floats formatted with ``floatfmt``, NaN shown as '-')."""

    def cell(v):
        if isinstance(v, float):
            return "-" if math.isnan(v) else format(v, floatfmt)
        return str(v)

    header = "| " + " | ".join(map(str, df.columns)) + " |"
    rule = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def _with_ci(value, lo, hi, fmt: str = ".2f") -> str:
    return "-" if math.isnan(value) else f"{value:{fmt}} [{lo:{fmt}}, {hi:{fmt}}]"


def _by_test(summary: pd.DataFrame, proxies: list[str], fmt) -> pd.DataFrame:
    table = {}
    for test, block in summary.groupby("test"):
        block = block.set_index("size")
        table[test] = {p: fmt(block.loc[p]) for p in proxies}
    return pd.DataFrame(table).T.rename_axis("test").reset_index()


def correlation_report(
    summary: pd.DataFrame,
    compute: pd.DataFrame,
    means: pd.DataFrame,
    per_sample: pd.DataFrame,
    reference: str,
    ci: float,
    figures: dict[str, str],
) -> str:
    """The report's markdown; ``figures`` maps figure keys to paths relative to the report."""
    proxies = [s for s in compute["size"] if s != reference]
    ratio = compute.set_index("size")["compute_ratio"]
    label = {p: f"{p} ({ratio[p]:.0f}x)" for p in proxies}
    headline = summary.groupby("size")[["r2", "spearman", "loo_r2"]].mean().reindex(proxies)
    headline.insert(0, "compute_ratio", [ratio[p] for p in proxies])
    pct = f"{100 * ci:.0f}%"
    dists = sorted(means["dist"].unique())
    tests = sorted(means["test"].unique())
    acc = means.dropna(subset=["accuracy"]).pivot_table(index="test", columns="size", values="accuracy")
    median_ps = per_sample.groupby(["test", "size"])["r2"].median().unstack().reindex(columns=proxies)
    compute_shown = compute.assign(
        params=compute["params"].map("{:,}".format),
        tokens=compute["tokens"].map("{:,}".format),
        flops=compute["flops"].map("{:.3g}".format),
    )
    parts = [
        "# Scale correlation: do proxy models see the training data the way the reference does?",
        "",
        f"Reference size **{reference}**; proxies {', '.join(proxies)}. Each size was trained on each of "
        f"{len(dists)} training distributions ({', '.join(dists)}) and evaluated on {len(tests)} test sets "
        f"({', '.join(tests)}). For each test set and proxy, the points are the training distributions: "
        "the proxy's mean loss against the reference's. R^2 is that of the least-squares line; intervals are "
        f"{pct} percentile bootstraps over distributions.",
        "",
        "## Headline: mean over test sets",
        "",
        md_table(headline.rename(columns={"r2": "mean R^2", "spearman": "mean Spearman", "loo_r2": "mean LOO R^2"}).rename_axis("proxy").reset_index()),
        "",
        "## Compute",
        "",
        "Training tokens = tokens_per_param x params; FLOPs = 6 x params x tokens for one run.",
        "",
        md_table(compute_shown, floatfmt=".2f"),
        "",
        f"![training curves]({figures['curves']})",
        "",
        f"## R^2 of reference on proxy mean loss ({pct} CI)",
        "",
        md_table(_by_test(summary, proxies, lambda r: _with_ci(r["r2"], r["r2_lo"], r["r2_hi"])).rename(columns=label)),
        "",
        f"![Figure 1: scatter grid]({figures['scatter']})",
        "",
        f"![Figure 2: R^2 against compute ratio]({figures['r2_compute']})",
        "",
        f"## Spearman correlation ({pct} CI)",
        "",
        md_table(_by_test(summary, proxies, lambda r: _with_ci(r["spearman"], r["spearman_lo"], r["spearman_hi"])).rename(columns=label)),
        "",
        "## Leave one distribution out",
        "",
        "A line fit on all other distributions predicts the held-out distribution's reference loss from the "
        "proxy's; out-of-sample R^2 = 1 - PRESS / total sum of squares, MAE in nats per token.",
        "",
        md_table(_by_test(summary, proxies, lambda r: f"{r['loo_r2']:.2f} (MAE {r['loo_mae']:.3f})").rename(columns=label)),
        "",
        "## Accuracy",
        "",
        "HellaSwag: the gold ending has the lowest length-normalised loss of the 4; LAMBADA: greedy decoding "
        "reproduces the last word. Mean over training distributions.",
        "",
        md_table(acc.reset_index()) if not acc.empty else "(no test set with an accuracy)",
        "",
        f"![Figure 3: R^2 against accuracy above chance]({figures['r2_accuracy']})",
        "",
        "## Per-sample agreement",
        "",
        "Median over test samples of the R^2 across distributions of one sample's proxy loss and reference loss.",
        "",
        md_table(median_ps.rename(columns=label).reset_index()),
        "",
        f"![Figure 4: per-sample losses]({figures['per_sample']})",
        "",
        f"![Figure 5: per-sample R^2]({figures['per_sample_hist']})",
        "",
    ]
    return "\n".join(parts)


def lds_report(lds: pd.DataFrame, compute: pd.DataFrame, lds_m: pd.DataFrame, overlap: pd.DataFrame, rank: pd.DataFrame, accuracy: dict, setup: dict, ci: float, figures: dict[str, str]) -> str:
    """Markdown of the attribution-across-scale experiment; ``setup`` describes the run."""
    ref = setup["reference"]
    pct = f"{100 * ci:.0f}%"
    headline = lds.assign(
        **{f"LDS [{pct} CI]": [_with_ci(r.lds, r.lds_lo, r.lds_hi) for r in lds.itertuples()]},
        compute_ratio=lds["compute_ratio"].map(lambda r: f"{r:.1f}x"),
        relative_to_reference=lds["relative_to_reference"].map("{:.2f}".format),
        accuracy=lds["size"].map(lambda s: "-" if accuracy.get(s) is None else f"{accuracy[s]:.3f}"),
    )[["size", "params", "compute_ratio", f"LDS [{pct} CI]", "relative_to_reference", "accuracy", "targets"]]
    cost = compute.assign(
        train_flops=compute["train_flops"].map("{:.3g}".format),
        trak_flops=compute["trak_flops"].map("{:.3g}".format),
        train_seconds=compute["train_seconds"].map("{:.1f}".format),
        trak_seconds=compute["trak_seconds"].map("{:.1f}".format),
        compute_ratio=compute["compute_ratio"].map("{:.1f}x".format),
    )[["size", "params", "checkpoints", "compute_ratio", "train_flops", "trak_flops", "train_seconds", "trak_seconds", "proj_dim"]]
    by_m = lds_m.pivot(index="checkpoints", columns="size", values="lds")[list(compute["size"])]
    overlap_wide = overlap.pivot(index="size", columns="end", values="overlap").reset_index()
    rank_wide = rank.pivot(index="size_a", columns="size_b", values="spearman").loc[list(compute["size"]), list(compute["size"])]
    parts = [
        "# Data attribution across scale: do proxy datamodels predict the reference?",
        "",
        f"Setting **{setup['setting']}** ({setup['description']}); {setup['n_train']} training and "
        f"{setup['n_targets']} target examples. Every size trains {setup['checkpoints']} checkpoints "
        f"(seeds) on the full training set; TRAK (traker, projection size up to {setup['proj_dim']}, "
        f"Q term {'on' if setup['q_term'] else 'off'}) gives one datamodel per size, averaged over its "
        f"checkpoints. The reference **{ref}** was retrained on {setup['subsets']} random subsets of "
        f"{setup['alpha']:.0%} of the training set; the LDS of a datamodel is the mean over targets of the "
        "Spearman correlation between its predicted outputs and the reference's actual outputs (margins) "
        f"across subsets. Intervals: {pct} bootstrap over targets.",
        "",
        "## LDS against compute (Figure 6)",
        "",
        md_table(headline),
        "",
        f"![Figure 6: LDS against compute ratio]({figures['fig_lds']})",
        "",
        "## LDS as checkpoints are averaged",
        "",
        md_table(by_m.reset_index()),
        "",
        f"![LDS against number of checkpoints]({figures['fig_m']})",
        "",
        "## Do proxies rank the same training examples highest? (Figure 7)",
        "",
        f"Share of each target's top-{overlap['k'].iloc[0]} (most helpful) and bottom-{overlap['k'].iloc[0]} "
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
        "## Compute",
        "",
        "Training FLOPs: 3 x forward FLOPs x examples x epochs per checkpoint, summed over the checkpoints; "
        "the compute ratio compares one checkpoint with one reference checkpoint. TRAK FLOPs (cost model): per "
        "training and target example a per-example gradient (3 x forward) and its projection "
        "(2 x params x projection size), plus finalizing (4 n k^2 + k^3) and scoring (2 n k targets), per "
        "checkpoint. Seconds are measured wall time of the jobs' training and featurize + score steps.",
        "",
        md_table(cost),
        "",
    ]
    return "\n".join(parts)


def dsdm_findings(results: pd.DataFrame, reference: str) -> list[str]:
    """One sentence per target: does DsDm with the reference size beat random, and with which sizes."""
    lines = []
    for target, block in results.groupby("target", sort=False):
        dsdm = block[block["kind"] == "dsdm"].sort_values("compute_ratio")
        if dsdm["loss_delta"].isna().all():
            lines.append(f"- **{target}**: no random selection to compare with.")
            continue
        ref = dsdm[dsdm["size"] == reference]
        ref_text = (
            f"DsDm with the reference size ({reference}) changes holdout loss by "
            f"{_with_ci(*ref[['loss_delta', 'loss_delta_lo', 'loss_delta_hi']].iloc[0], fmt='.3f')} nats/token relative to random"
            if len(ref) else "DsDm did not run with the reference size"
        )
        wins = [s for s, b in zip(dsdm["size"], dsdm["beats_random"]) if b]
        losses = [s for s, b in zip(dsdm["size"], dsdm["beats_random"]) if not b]
        verdict = f"beats random (interval below 0) with {', '.join(wins) or 'no size'}"
        if losses:
            verdict += f"; not with {', '.join(losses)}"
        lines.append(f"- **{target}**: {ref_text}. DsDm {verdict}.")
    return lines


def dsdm_report(results: pd.DataFrame, cost: pd.DataFrame, composition: pd.DataFrame, setup: dict, ci: float, figures: dict[str, str]) -> str:
    """Markdown of the dataset-selection-across-scale experiment; ``setup`` describes the run."""
    pct = f"{100 * ci:.0f}%"
    ref = setup["reference"]
    parts = [
        "# Dataset selection across scale: does DsDm with a proxy pick data that helps the reference?",
        "",
        f"Pool: {setup['n_pool']} windows of {setup['window']} tokens from {', '.join(setup['sources'])}. "
        f"Targets: {', '.join(setup['targets'])}, each split into {setup['n_targets']} target examples (used to "
        f"select) and {setup['n_holdout']} disjoint holdout examples (used to judge). Every size trains "
        f"{setup['checkpoints']} checkpoints on the pool; TRAK (projection size up to {setup['proj_dim']}) gives "
        "its datamodel of the pool for the target examples (output: mean margin of the continuation tokens). "
        f"Each method keeps {setup['fraction']:.0%} of the pool ({setup['k']} windows): DsDm the examples with "
        "the largest mean datamodel weight over the target's examples (predicted to lower target loss most), "
        "Bot-DsDm the smallest, DSIR hashed n-gram importance resampling, Classifier a logistic regression "
        f"target vs pool, random a uniform draw. The reference **{ref}** is trained from scratch on each "
        f"selection with {setup['seeds']} seeds and scored on the holdout examples of the selection's target: "
        "loss is the mean cross-entropy of the continuation tokens, token accuracy the share of them the model "
        f"predicts by argmax. Intervals: {pct} bootstrap over holdout examples of the seed-averaged values; "
        "the difference from random is paired by example.",
        "",
        "## Findings",
        "",
        *dsdm_findings(results, ref),
        "",
        "## Holdout loss against proxy compute (Figure 8)",
        "",
        "Error bars are the paired intervals of the difference from random selection, drawn around each "
        "point: a bar that does not reach the dashed random line is a difference the holdout examples resolve.",
        "",
        f"![Figure 8: DsDm with proxies of every size]({figures['fig_dsdm']})",
        "",
    ]
    for target, block in results.groupby("target", sort=False):
        table = pd.DataFrame(
            {
                "method": block["method"],
                "compute_ratio": block["compute_ratio"].map(lambda r: "-" if math.isnan(r) else f"{r:.1f}x"),
                f"holdout loss [{pct} CI]": [_with_ci(r.loss, r.loss_lo, r.loss_hi, '.3f') for r in block.itertuples()],
                "loss - random [CI]": [_with_ci(r.loss_delta, r.loss_delta_lo, r.loss_delta_hi, '.3f') for r in block.itertuples()],
                "token accuracy [CI]": [_with_ci(r.token_accuracy, r.token_accuracy_lo, r.token_accuracy_hi, '.3f') for r in block.itertuples()],
                "accuracy - random [CI]": [_with_ci(r.token_accuracy_delta, r.token_accuracy_delta_lo, r.token_accuracy_delta_hi, '.3f') for r in block.itertuples()],
            }
        )
        parts += [f"### Target {target}", "", md_table(table), ""]
    cost_md = cost.assign(
        compute_ratio=cost["compute_ratio"].map("{:.1f}x".format),
        **{c: cost[c].map("{:.3g}".format) for c in ("train_flops", "trak_flops", "selection_flops", "reference_train_flops")},
        **{c: cost[c].map("{:.1f}".format) for c in ("selection_seconds", "reference_train_seconds")},
        selection_over_reference=cost["selection_over_reference"].map("{:.2f}".format),
    )[["size", "params", "checkpoints", "compute_ratio", "train_flops", "trak_flops", "selection_flops", "reference_train_flops", "selection_over_reference", "selection_seconds", "reference_train_seconds"]]
    parts += [
        "## Cost of selecting with each size",
        "",
        "Selection cost: training the size's checkpoints on the pool (3 x forward FLOPs x examples x epochs) "
        "plus TRAK on the pool and the target examples (cost model of the attribution report), summed over "
        "checkpoints. Reference training cost: one reference model trained on one selection. Seconds are "
        "measured wall time of the jobs.",
        "",
        md_table(cost_md),
        "",
        "## What each method selected",
        "",
        "Share of each source among the selected pool examples (the pool row is the pool itself).",
        "",
        md_table(composition, floatfmt=".2f"),
        "",
        f"![composition of the selections]({figures['fig_composition']})",
        "",
    ]
    return "\n".join(parts)
