"""Figures of the dataset-selection-across-scale experiment (after the paper's Figure 8).

Every function writes a PNG and an SVG beside it (:func:`proxyscale.plotting.save`).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from proxyscale.plotting import ratio_label, save

_BASELINES = {
    "dsir": ("DSIR", "C2", ":"),
    "classifier": ("Classifier", "C4", "-."),
    "bot_dsdm": ("Bot-DsDm", "C3", (0, (1, 3))),
}


def dsdm_vs_compute(results: pd.DataFrame, reference: str, path) -> None:
    """Figure 8: holdout loss (top) and token accuracy (bottom) of the reference trained on each
    size's DsDm selection, against that size's compute ratio; random selection is the dashed line,
    the other baselines horizontal lines. Error bars: the paired interval of the difference from
    random, drawn around the point. One column per target."""
    targets = list(dict.fromkeys(results["target"]))
    metrics = [("loss", "holdout loss (nats/token)"), ("token_accuracy", "holdout token accuracy")]
    fig, axes = plt.subplots(len(metrics), len(targets), figsize=(4.6 * len(targets), 6.4), squeeze=False)
    for col, target in enumerate(targets):
        block = results[results["target"] == target]
        dsdm = block[block["kind"] == "dsdm"].sort_values("compute_ratio")
        for row, (metric, label) in enumerate(metrics):
            ax = axes[row, col]
            for _, r in block[block["kind"] == "random"].iterrows():
                ax.axhline(r[metric], color="gray", linestyle="--", linewidth=1.2, label="random")
            for kind, (name, color, style) in _BASELINES.items():
                for _, b in block[block["kind"] == kind].iterrows():
                    ax.axhline(
                        b[metric],
                        color=color,
                        linestyle=style,
                        linewidth=1.2,
                        label=name if pd.isna(b["size"]) else f"{name} ({b['size']})",
                    )
            delta = dsdm[f"{metric}_delta"]
            err = np.vstack([delta - dsdm[f"{metric}_delta_lo"], dsdm[f"{metric}_delta_hi"] - delta]).clip(min=0)
            ax.errorbar(
                dsdm["compute_ratio"],
                dsdm[metric],
                yerr=None if delta.isna().all() else err,
                fmt="o-",
                color="C0",
                capsize=3,
                label="DsDm with size (bars: paired CI vs random)",
            )
            if row == 0:
                for _, d in dsdm.iterrows():
                    tag = (
                        f"{d['size']} (reference)"
                        if d["size"] == reference
                        else f"{d['size']} ({ratio_label(d['compute_ratio'])})"
                    )
                    ax.annotate(
                        tag, (d["compute_ratio"], d[metric]), textcoords="offset points", xytext=(5, 6), fontsize=8
                    )
                ax.set_title(f"target: {target}")
            ax.set_xscale("log")
            if not ax.xaxis_inverted():
                ax.invert_xaxis()
            ax.set_ylabel(label)
            if row == len(metrics) - 1:
                ax.set_xlabel("proxy compute ratio (reference FLOPs / proxy's), log scale")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.tight_layout()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(len(labels), 3), fontsize=8)
    save(fig, path)


def composition_bars(composition: pd.DataFrame, path) -> None:
    """Share of each pool source in every selection, and in the pool itself."""
    sources = [c for c in composition.columns if c not in ("target", "method")]
    labels = [m if t == "-" else f"{t} / {m}" for t, m in zip(composition["target"], composition["method"])]
    fig, ax = plt.subplots(figsize=(6.4, 0.32 * len(labels) + 1.2))
    left = np.zeros(len(labels))
    for i, source in enumerate(sources):
        ax.barh(labels, composition[source], left=left, color=f"C{i % 10}", label=source)
        left += composition[source].to_numpy()
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of selected pool examples")
    ax.legend(fontsize=7, ncol=len(sources), loc="upper center", bbox_to_anchor=(0.5, -0.12 - 1.0 / len(labels)))
    save(fig, path)
