"""Figures of the attribution-across-scale experiment (after the paper's Figures 6 and 7, appendix D).

Every function writes a PNG and an SVG beside it (:func:`proxyscale.plotting.save`).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from proxyscale.plotting import ratio_label, save


def lds_vs_compute(table: pd.DataFrame, reference: str, path) -> None:
    """Figure 6: LDS (bootstrap interval over targets) of each size's configured datamodel against how
    much less training compute it needs than the reference; the reference's own LDS is the dashed
    line, the other variant (Q term on or off) the hollow markers."""
    lds, other = table[table["configured"]], table[~table["configured"]]
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    ref_lds = lds.set_index("size").loc[reference, "lds"]
    ax.axhline(ref_lds, color="gray", linestyle="--", linewidth=1, label=f"reference ({reference})")
    ax.axhline(0, color="black", linewidth=0.6)
    err = np.vstack([lds["lds"] - lds["lds_lo"], lds["lds_hi"] - lds["lds"]])
    ax.errorbar(
        lds["compute_ratio"],
        lds["lds"],
        yerr=err,
        fmt="o",
        color="C0",
        capsize=3,
        label=f"TRAK datamodel of size, {'with' if lds['q_term'].iloc[0] else 'without'} Q term (configured)",
    )
    ax.plot(
        other["compute_ratio"],
        other["lds"],
        "o",
        markerfacecolor="none",
        color="gray",
        label=f"the same, {'with' if other['q_term'].iloc[0] else 'without'} Q term",
    )
    for _, row in lds.iterrows():
        ax.annotate(
            f"{row['size']} ({ratio_label(row['compute_ratio'])})",
            (row["compute_ratio"], row["lds"]),
            textcoords="offset points",
            xytext=(6, 6),
            fontsize=8,
        )
    ax.set_xscale("log")
    ax.invert_xaxis()
    ax.set_xlabel("compute ratio (reference training FLOPs / size's), log scale")
    ax.set_ylabel("LDS vs reference retrained on subsets")
    low, high = min(0, lds["lds_lo"].min(), other["lds"].min()), max(lds["lds_hi"].max(), other["lds"].max())
    ax.set_ylim(low - 0.02, high * 1.25)
    ax.legend(loc="lower right", fontsize=8)  # the reference's end, where LDS is highest: clear of the points
    save(fig, path)


def lds_vs_checkpoints(table: pd.DataFrame, compute: pd.DataFrame, path) -> None:
    """LDS of the configured datamodel as it averages over more checkpoints, one line per size."""
    table = table[table["configured"]]
    ratio = compute.set_index("size")["compute_ratio"]
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    for size in compute["size"]:
        block = table[table["size"] == size]
        label = f"{size} (reference)" if ratio[size] == 1 else f"{size} ({ratio_label(ratio[size])} less compute)"
        ax.plot(block["checkpoints"], block["lds"], marker="o", label=label)
    ax.set_xlabel("checkpoints averaged (M)")
    ax.set_ylabel("LDS")
    ax.set_xticks(sorted(table["checkpoints"].unique()))
    ax.legend(fontsize=8)
    save(fig, path)


def overlap_bars(overlap: pd.DataFrame, compute: pd.DataFrame, path) -> None:
    """Figure 7: share of each target's top-k and bottom-k training examples a proxy has in common
    with the reference, against the chance level k / n."""
    order = [s for s in compute["size"] if s in set(overlap["size"])]
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    if not order:
        ax.axis("off")
        ax.text(0.5, 0.5, "the reference is the only size: no proxy to compare", ha="center", va="center")
        save(fig, path)
        return
    sns.barplot(overlap, x="size", y="overlap", hue="end", order=order, ax=ax)
    ax.axhline(overlap["chance"].iloc[0], color="gray", linestyle="--", linewidth=1, label="chance")
    ratio = compute.set_index("size")["compute_ratio"]
    ax.set_xticks(range(len(order)), [f"{s}\n{ratio_label(ratio[s])}" for s in order])
    ax.set_xlabel("proxy (compute ratio to reference)")
    ax.set_ylabel(f"overlap with reference's top/bottom {overlap['k'].iloc[0]}")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    save(fig, path)


def rank_heatmap(rank: pd.DataFrame, order: list[str], path) -> None:
    """Mean per-target Spearman correlation of datamodel weights between every pair of sizes."""
    wide = rank.pivot(index="size_a", columns="size_b", values="spearman").loc[order, order]
    fig, ax = plt.subplots(figsize=(1.1 * len(order) + 1.5, 1.0 * len(order) + 0.8))
    sns.heatmap(wide, annot=True, fmt=".2f", vmin=0, vmax=1, cmap="viridis", ax=ax, cbar_kws={"label": "Spearman"})
    ax.set_xlabel("")
    ax.set_ylabel("")
    save(fig, path)


def top_examples_images(
    tops: dict[str, np.ndarray], order: list[str], train, target_examples, targets: list[int], k: int, path
) -> None:
    """Appendix D: for a few targets, the image and each size's k most helpful training images (``tops``:
    each size's (k, n_targets) top rows; ``train`` and ``target_examples`` answer ``take(rows)``)."""
    rows, height = len(targets) * len(order), 0.85 * len(targets) * len(order) + 0.7
    fig, axes = plt.subplots(
        rows, k + 2, figsize=(0.85 * (k + 2), height), squeeze=False, gridspec_kw={"width_ratios": [1, 0.7] + [1] * k}
    )
    fig.subplots_adjust(top=1 - 0.7 / height, bottom=0.01, left=0.01, right=0.99, hspace=0.35, wspace=0.08)
    for ax in axes.flat:
        ax.axis("off")
    for t_i, target in enumerate(targets):
        for s_i, size in enumerate(order):
            row = axes[t_i * len(order) + s_i]
            if s_i == 0:
                image, label = target_examples.take([target])
                row[0].imshow(_image(image[0]), cmap="gray")
                row[0].set_title(f"target {target} ({label[0]})", fontsize=6, pad=2)
            row[1].text(0.5, 0.5, size, ha="center", va="center", fontsize=7, transform=row[1].transAxes)
            images, labels = train.take(tops[size][:k, target])
            for j, (image, label) in enumerate(zip(images, labels)):
                row[j + 2].imshow(_image(image), cmap="gray")
                row[j + 2].set_title(str(label), fontsize=6, pad=1)
    fig.suptitle(f"Each size's top-{k} training images for a target (label above each)", fontsize=8)
    save(fig, path)


def top_examples_text(
    tops: dict[str, np.ndarray], order: list[str], texts: dict, targets: list[int], k: int, path
) -> None:
    """The language setting's counterpart: each size's top training windows for a few targets, as text
    (``texts`` from :func:`proxyscale.attribution.analysis.example_texts`)."""
    lines = []
    for target in targets:
        lines.append(f"target {target}: {texts['target'][target][:80]!r}")
        for size in order:
            for idx in tops[size][:k, target]:
                lines.append(f"  {size:>6} #{idx}: {texts['train'][idx][:70]!r}")
        lines.append("")
    fig, ax = plt.subplots(figsize=(9, 0.16 * len(lines) + 0.5))
    ax.axis("off")
    ax.text(0, 1, "\n".join(lines), family="monospace", fontsize=6, va="top", parse_math=False)
    save(fig, path)


def _image(img: np.ndarray) -> np.ndarray:
    return img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)
