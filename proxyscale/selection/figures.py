"""Figures of the dataset-selection-across-scale experiment (after the paper's Figure 8).

Every function writes a PNG and an SVG beside it (:func:`proxyscale.plotting.save`).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import FixedFormatter, FixedLocator, NullLocator

from proxyscale.plotting import ratio_label, save
from proxyscale.selection.registry import METHODS

_LINE, _COMPARISON = METHODS["dsdm"], METHODS["random"]
_BASELINES = sorted((m for m in METHODS.values() if m not in (_LINE, _COMPARISON)), key=lambda m: bool(m.datamodel))
"""Every other method is a horizontal line: those that select without a datamodel, then with one."""


def _size_ticks(ax, dsdm: pd.DataFrame, reference: str) -> None:
    """The compute-ratio axis of Figure 8: log scale, most compute on the right, one tick per size that selected
    (its name over its compute ratio, 'reference' for the reference) and room beyond the outermost points, so
    the sizes are named below the axis rather than beside points, where they would meet the other lines."""
    sizes = dsdm.drop_duplicates("size").sort_values("compute_ratio")
    ratios = sizes["compute_ratio"].to_numpy(float)
    names = [
        f"{size}\nreference" if size == reference else f"{size}\n{ratio_label(ratio)}"
        for size, ratio in zip(sizes["size"], ratios)
    ]
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(ratios))
    ax.xaxis.set_major_formatter(FixedFormatter(names))
    ax.xaxis.set_minor_locator(NullLocator())
    if len(ratios):
        pad = max(ratios.max() / ratios.min(), 4.0) ** 0.12  # a margin of about a tenth of the span, in log units
        ax.set_xlim(ratios.max() * pad, ratios.min() / pad)  # inverted: the reference on the right


def dsdm_vs_compute(results: pd.DataFrame, reference: str, path) -> None:
    """Figure 8: holdout loss (top) and token accuracy (bottom) of the reference trained on each
    size's DsDm selection, against that size's compute ratio (a log axis whose ticks name the sizes);
    random selection is the dashed line, the other baselines horizontal lines, all named in the legend.
    Error bars: the interval of the difference from random (over both sides' retraining seeds and the
    holdout examples, paired by example), drawn around the point. One column per target."""
    targets = list(dict.fromkeys(results["target"]))
    metrics = [("loss", "holdout loss (nats/token)"), ("token_accuracy", "holdout token accuracy")]
    fig, axes = plt.subplots(len(metrics), len(targets), figsize=(4.2 * len(targets), 5.6), squeeze=False, sharex=True)
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
                label=f"{_LINE.label}, selecting with each size (bars: CI vs {_COMPARISON.label}, seeds and examples)",
            )
            if row == 0:
                ax.set_title(f"target: {target}")
            ax.set_ylabel(label if col == 0 else "")
        axes[-1, col].set_xlabel("size whose datamodel selected\n(compute ratio: reference FLOPs / its)")
    for ax in axes.flat:  # shared, but set on each so no matplotlib version leaves a panel unticked
        _size_ticks(ax, results[results["kind"] == _LINE.kind], reference)
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
