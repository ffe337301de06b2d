"""Figures of the scale-correlation experiment, after the paper's Figures 1-5.

Every function takes the tidy tables of :mod:`proxyscale.correlation.analysis` and writes a PNG (for
the markdown report) and an SVG (for papers) next to each other.
"""

from __future__ import annotations

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from proxyscale import stats
from proxyscale.correlation.analysis import NATS_PER_TOKEN
from proxyscale.plotting import INDUCED_NOTE, palette, ratio_label, save, styles


def _distribution_legend(fig, ax, dists, induced) -> None:
    """One legend of the training distributions (from ``ax``'s points) below the figure, titled with how
    selection-induced ones are drawn when there are any."""
    handles, labels = ax.get_legend_handles_labels()
    title = INDUCED_NOTE if set(induced) & set(dists) else None
    fig.legend(
        handles,
        labels,
        loc="upper center",
        ncol=min(len(dists), 8),
        bbox_to_anchor=(0.5, 0.0),
        frameon=False,
        title=title,
    )


def scatter_grid(means, compute, reference, path, induced=(), unit=NATS_PER_TOKEN) -> None:
    """Figure 1: reference vs proxy mean loss (in ``unit``), one point per training distribution (triangles
    for the selection-induced ones, ``induced``); rows are proxies (largest first), columns test sets."""
    proxies = [s for s in compute["size"] if s != reference]
    ratio = compute.set_index("size")["compute_ratio"]
    tests = sorted(means["test"].unique())
    dists = sorted(means["dist"].unique())
    look = styles(dists, induced)
    wide = means.pivot_table(index=["test", "dist"], columns="size", values="loss")
    fig, axes = plt.subplots(len(proxies), len(tests), figsize=(2.6 * len(tests), 2.5 * len(proxies)), squeeze=False)
    for i, size in enumerate(proxies):
        for j, test in enumerate(tests):
            ax, block = axes[i, j], wide.loc[test]
            x, y = block[size].to_numpy(), block[reference].to_numpy()
            for dist, xi, yi in zip(block.index, x, y):
                ax.scatter(xi, yi, s=28, label=dist, edgecolor="black", linewidth=0.4, **look[dist])
            slope, intercept = np.polyfit(x, y, 1)
            xs = np.linspace(x.min(), x.max(), 10)
            ax.plot(xs, intercept + slope * xs, color="gray", linestyle="--", linewidth=1)
            ax.text(0.04, 0.92, f"$R^2$={stats.r2(x, y):.2f}", transform=ax.transAxes, fontsize=9, va="top")
            if i == 0:
                ax.set_title(test)
            if j == 0:
                ax.set_ylabel(f"reference loss\n(proxy {size}, {ratio_label(ratio[size])} less compute)")
            if i == len(proxies) - 1:
                ax.set_xlabel("proxy loss")
    _distribution_legend(fig, axes[0, 0], dists, induced)
    fig.suptitle(f"Reference vs proxy mean loss ({unit}) across training distributions", y=1.01)
    fig.tight_layout()
    save(fig, path)


def r2_vs_compute(summary, path) -> None:
    """Figure 2: R^2 against how much less compute the proxy used, per test set and on average; where the
    reference has 2 or more seeds, each test set's noise ceiling (the reference's reliability, what a
    noise-free proxy reaches against its seed mean) as a dashed line."""
    fig, ax = plt.subplots(figsize=(5.5, 4))
    tests = sorted(summary["test"].unique())
    colors = palette(tests)
    dodge = np.linspace(-0.04, 0.04, len(tests))  # in log10 units, so the intervals do not overlap
    ceilings = summary.groupby("test")["ref_reliability"].first().dropna()
    for test, ceiling in ceilings.items():
        ax.axhline(ceiling, color=colors[test], linestyle="--", linewidth=1, alpha=0.7)
    if len(ceilings):
        ax.plot([], [], color="gray", linestyle="--", linewidth=1, label="noise ceiling")
    for test, shift in zip(tests, dodge):
        s = summary[summary["test"] == test].sort_values("compute_ratio")
        err = np.vstack([s["r2"] - s["r2_lo"], s["r2_hi"] - s["r2"]]).clip(min=0)
        bars = ax.errorbar(
            s["compute_ratio"] * 10**shift,
            s["r2"],
            yerr=err,
            marker="o",
            ms=4,
            capsize=2,
            color=colors[test],
            label=test,
            linewidth=1.2,
            elinewidth=0.8,
        )
        for line in bars[2]:
            line.set_alpha(0.35)
    mean = summary.groupby("compute_ratio")["r2"].mean()
    ax.plot(mean.index, mean.values, color="black", linewidth=2.5, marker="s", label="mean")
    ax.set_xscale("log")
    ax.set_xlabel("compute ratio (reference FLOPs / proxy FLOPs)")
    ax.set_ylabel("$R^2$ of reference loss on proxy loss")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8, ncol=2)
    ax.set_title("Proxy-reference agreement against proxy compute\n(bars: bootstrap intervals)", fontsize=10)
    save(fig, path)


def r2_vs_accuracy(summary, path) -> None:
    """Figure 3: R^2 against the proxy's accuracy above chance, for test sets with an accuracy."""
    s = summary.dropna(subset=["proxy_accuracy", "chance"])
    fig, ax = plt.subplots(figsize=(5.5, 4))
    if s.empty:
        ax.text(0.5, 0.5, "no test set with an accuracy", ha="center", transform=ax.transAxes)
    for test, block in s.groupby("test"):
        block = block.sort_values("compute_ratio")
        above = 100 * (block["proxy_accuracy"] - block["chance"])
        ax.plot(above, block["r2"], marker="o", label=test)
        for x, y, size in zip(above, block["r2"], block["size"]):
            ax.annotate(size, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.axvline(0, color="gray", linestyle=":")
    ax.set_xlabel("proxy accuracy above chance (percentage points)")
    ax.set_ylabel("$R^2$ of reference loss on proxy loss")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8)
    ax.set_title("Agreement against proxy accuracy")
    save(fig, path)


def per_sample_scatter(losses, size, reference, test, n_panels, path, seed=0, induced=(), unit=NATS_PER_TOKEN) -> None:
    """Figure 4: per-sample reference vs proxy loss (in ``unit``) across distributions (triangles for the
    selection-induced ones, ``induced``), for random samples; ``losses`` may hold several seeds of a
    (distribution, size) (column ``seed``): each point is then the mean over them, as in every other figure."""
    block = losses[(losses["test"] == test) & losses["size"].isin([size, reference])]
    wide = block.pivot_table(index=["example_id", "dist"], columns="size", values="loss")
    ids = wide.index.get_level_values("example_id").unique()
    chosen = np.random.default_rng(seed).choice(ids, size=min(n_panels, len(ids)), replace=False)
    cols = min(4, len(chosen))
    rows = int(np.ceil(len(chosen) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.4 * rows), squeeze=False)
    dists = sorted(block["dist"].unique())
    look = styles(dists, induced)
    for ax, ex in zip(axes.flat, sorted(chosen)):
        sample = wide.loc[ex]
        for dist in sample.index:
            ax.scatter(
                sample.loc[dist, size],
                sample.loc[dist, reference],
                s=24,
                edgecolor="black",
                linewidth=0.4,
                label=dist,
                **look[dist],
            )
        ax.set_title(f"{test} #{ex}  $R^2$={stats.r2(sample[size], sample[reference]):.2f}", fontsize=9)
    for ax in axes.flat[len(chosen) :]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel(f"proxy {size} loss")
    for ax in axes[:, 0]:
        ax.set_ylabel("reference loss")
    _distribution_legend(fig, axes[0, 0], dists, induced)
    fig.suptitle(f"Per-sample losses ({unit}) across training distributions", y=1.01)
    fig.tight_layout()
    save(fig, path)


_OBSERVED = {"histtype": "stepfilled", "facecolor": (*mcolors.to_rgb("C0"), 0.55), "edgecolor": "C0", "linewidth": 0.8}
_NULL = {"histtype": "step", "edgecolor": "black", "linewidth": 1.3}
"""How Figure 5 draws a proxy's observed per-sample R^2 (filled) and its null (an outline on top)."""


def per_sample_hist(per_sample, null, compute, path) -> None:
    """Figure 5: distribution of per-sample R^2, one panel per (test set, proxy): rows are test sets,
    columns proxies (largest first), on shared axes. Each panel's filled histogram is the proxy's observed
    values; its black outline is the same proxy's permutation null (the training distributions shuffled
    against the reference's, the same number of times for every proxy), named in the legend and the title."""
    ratio = compute.set_index("size")["compute_ratio"]
    proxies = [s for s in compute["size"] if s in set(per_sample["size"])]
    tests = sorted(per_sample["test"].unique())
    n_perm = round(len(null) / len(per_sample)) if len(per_sample) else 0  # each null holds n_perm values per example
    bins = np.linspace(0, 1, 21)
    fig, axes = plt.subplots(
        len(tests),
        len(proxies),
        figsize=(max(1.9 * len(proxies) + 0.6, 5.0), 1.4 * len(tests) + 1.3),  # wide enough for the title
        squeeze=False,
        sharex=True,
        sharey=True,
    )
    for i, test in enumerate(tests):
        for j, size in enumerate(proxies):
            ax = axes[i, j]
            for frame, style in ((per_sample, _OBSERVED), (null, _NULL)):
                values = frame.loc[(frame["test"] == test) & (frame["size"] == size), "r2"].dropna()
                if len(values):
                    ax.hist(values, bins=bins, weights=np.full(len(values), 1 / len(values)), **style)
            if i == 0:
                ax.set_title(f"proxy {size}\n{ratio_label(ratio[size])} less compute", fontsize=9)
            if j == 0:
                ax.set_ylabel(f"{test}\nshare of examples", fontsize=9)
            if i == len(tests) - 1:
                ax.set_xlabel("per-sample $R^2$")
    axes[0, 0].set_xlim(0, 1)
    axes[0, 0].set_xticks([0, 0.5, 1], ["0", "0.5", "1"])
    fig.suptitle(
        "Per-sample $R^2$ of proxy vs reference loss across training distributions\n"
        f"black outline: null, the distributions shuffled ({n_perm} permutations per proxy)",
        fontsize=10,
    )
    fig.tight_layout()
    handles = [
        Patch(facecolor=_OBSERVED["facecolor"], edgecolor=_OBSERVED["edgecolor"],
              label="observed: proxy vs reference, per example"),
        Line2D([], [], color=_NULL["edgecolor"], linewidth=_NULL["linewidth"],
               label=f"null: training distributions shuffled ({n_perm} permutations)"),
    ]  # fmt: skip
    ncol = 2 if len(proxies) > 2 else 1  # side by side only where the panels are as wide as the two entries
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=ncol, frameon=False, fontsize=8)
    save(fig, path)


def training_curves(curves: pd.DataFrame, path) -> None:
    """Training loss against tokens, one panel per distribution, one line per size trained here (a
    figure that says so when every size is imported)."""
    if curves.empty:
        fig, ax = plt.subplots(figsize=(5, 1.5))
        ax.text(0.5, 0.5, "No training curves: every size was imported (models:), none trained here.",
                ha="center", va="center")  # fmt: skip
        ax.axis("off")
        save(fig, path)
        return
    g = sns.relplot(
        curves,
        x="tokens",
        y="loss",
        hue="size",
        col="dist",
        col_wrap=4,
        kind="line",
        height=2.3,
        aspect=1.2,
        facet_kws={"sharey": True, "sharex": False},
    )
    g.set(xscale="log")
    g.set_axis_labels("training tokens", "train loss (nats/token)")
    save(g.figure, path)


def reliability_figure(table: pd.DataFrame, path, ci: float = 0.95) -> None:
    """Calibration of the decision probabilities (:func:`proxyscale.correlation.decisions.reliability_table`):
    above, the observed share of decisions that held against the mean predicted probability per bin, with
    its Wilson interval (the table's level ``ci``) and the diagonal of perfect calibration; below, the
    number of decisions per bin."""
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(4.8, 5.4), sharex=True, gridspec_kw={"height_ratios": [3, 1.2], "hspace": 0.08}
    )
    top.plot([0, 1], [0, 1], color="gray", linestyle="--", linewidth=1, label="perfect calibration")
    err = np.vstack([table["observed"] - table["observed_lo"], table["observed_hi"] - table["observed"]]).clip(min=0)
    top.errorbar(table["predicted"], table["observed"], yerr=err, marker="o", ms=5, capsize=3, color="C0",
                 linewidth=1.2, label=f"observed share held ({100 * ci:.0f}% Wilson interval)")  # fmt: skip
    top.set_xlim(0, 1)
    top.set_ylim(-0.02, 1.02)
    top.set_ylabel("share of decisions that held")
    top.set_title(
        f"Do proxy decisions hold for the reference as predicted?\n{int(table['count'].sum())} decisions "
        "(pairs of training distributions x test sets x proxies)",
        fontsize=10,
    )
    centres, width = (table["bin_lo"] + table["bin_hi"]) / 2, table["bin_hi"] - table["bin_lo"]
    bottom.bar(centres, table["count"], width=0.9 * width, color="C0", alpha=0.55, edgecolor="C0")
    for x, n in zip(centres, table["count"]):
        bottom.annotate(str(int(n)), (x, n), xytext=(0, 4), textcoords="offset points", ha="center", va="bottom",
                        fontsize=7)  # fmt: skip
    bottom.set_ylim(0, 1.3 * (table["count"].max() if len(table) else 1))  # none: every pair tied
    bottom.set_ylabel("decisions")
    bottom.set_xlabel("predicted probability that the reference agrees")
    fig.legend(
        *top.get_legend_handles_labels(), loc="upper center", bbox_to_anchor=(0.5, 0.0), frameon=False, fontsize=8
    )
    save(fig, path)
