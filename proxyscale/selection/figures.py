"""Figures of the dataset-selection-across-scale experiment (after the paper's Figure 8).

Every function writes a PNG and an SVG beside it (:func:`proxyscale.plotting.save`).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from proxyscale.plotting import ratio_label, save
from proxyscale.selection.registry import METHODS

_LINE, _COMPARISON = METHODS["dsdm"], METHODS["random"]
_BASELINES = sorted((m for m in METHODS.values() if m not in (_LINE, _COMPARISON)), key=lambda m: bool(m.datamodel))
"""Every other method is a horizontal line: those that select without a datamodel, then with one."""


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
        dsdm = block[block["kind"] == _LINE.kind].sort_values("compute_ratio")
        for row, (metric, label) in enumerate(metrics):
            ax = axes[row, col]
            for m in (_COMPARISON, *_BASELINES):
                for _, b in block[block["kind"] == m.kind].iterrows():
                    ax.axhline(
                        b[metric],
                        color=m.color,
                        linestyle=m.linestyle,
                        linewidth=1.2,
                        label=m.label if pd.isna(b["size"]) else f"{m.label} ({b['size']})",
                    )
            delta = dsdm[f"{metric}_delta"]
            err = np.vstack([delta - dsdm[f"{metric}_delta_lo"], dsdm[f"{metric}_delta_hi"] - delta]).clip(min=0)
            ax.errorbar(
                dsdm["compute_ratio"],
                dsdm[metric],
                yerr=None if delta.isna().all() else err,
                fmt=f"o{_LINE.linestyle}",
                color=_LINE.color,
                capsize=3,
                label=f"{_LINE.label} with size (bars: paired CI vs {_COMPARISON.label})",
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
