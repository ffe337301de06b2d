"""Figures 5 and 8 as a reader sees them: every text inside the figure, no text on a line or on another text,
one panel per proxy in Figure 5 with its null named in the figure. Inputs are synthetic tables shaped like
the default run's (built through the analysis functions, so the columns are the real ones)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from proxyscale.correlation import analysis as correlation_analysis
from proxyscale.correlation import figures as correlation_figures
from proxyscale.plotting import ratio_label
from proxyscale.selection import analysis as selection_analysis
from proxyscale.selection import figures as selection_figures

SELECTION_RATIOS = {"d4": 34.0, "d8": 6.4, "d16": 1.0}
"""The default selection sizes' compute ratios to the reference d16."""

SELECTION_LOSSES = {
    # target: {method: mean holdout loss}; DsDm's line crosses the Classifier's and DSIR's near d4 and d8
    "squad": {"random": 4.20, "dsir": 4.06, "classifier": 3.98, "bot_dsdm-d16": 4.48,
              "dsdm-d4": 3.99, "dsdm-d8": 3.87, "dsdm-d16": 3.62},
    "lambada": {"random": 4.31, "dsir": 4.07, "classifier": 4.16, "bot_dsdm-d16": 4.52,
                "dsdm-d4": 4.15, "dsdm-d8": 4.07, "dsdm-d16": 3.93},
}  # fmt: skip


def selection_results(losses=SELECTION_LOSSES, ratios=SELECTION_RATIOS, n_holdout=200, seeds=2) -> pd.DataFrame:
    """Figure 8's input (:func:`proxyscale.selection.analysis.results_table`) from per-example holdout losses
    around ``losses``, paired across methods as the retrained models' are."""
    rng = np.random.default_rng(0)
    rows = []
    for target, methods in losses.items():
        hardness = rng.normal(0, 0.6, n_holdout)  # shared by every method, so the paired intervals are tight
        for method, mean in methods.items():
            for seed in range(seeds):
                loss = mean + hardness + rng.normal(0, 0.15, n_holdout)
                acc = np.clip(0.62 - 0.1 * loss + rng.normal(0, 0.02, n_holdout), 0, 1)
                ids = np.arange(n_holdout)
                rows.append(pd.DataFrame({"target": target, "method": method, "holdout_task": target, "seed": seed,
                                          "example_id": ids, "loss": loss, "token_accuracy": acc}))  # fmt: skip
    retrains = pd.concat(rows, ignore_index=True)
    compute = pd.DataFrame({"size": list(ratios), "compute_ratio": list(ratios.values())})
    return selection_analysis.results_table(retrains, compute, 200, 0.95)


CORRELATION_RATIOS = {"ref": 1.0, "l": 5.9, "m": 17.0, "s": 31.0, "xs": 110.0}
"""The default correlation sizes' compute ratios, largest first as compute_table sorts them."""


def correlation_inputs(n_examples=300, n_dists=11, tests=("c4", "pile", "squad", "lambada"), n_perm=20):
    """Figure 5's inputs: (per_sample, null, compute) from per-sample losses of ``n_dists`` distributions,
    each proxy's the reference's plus noise that grows as the proxy shrinks (through the analysis functions)."""
    rng = np.random.default_rng(0)
    noise = {"l": 0.15, "m": 0.3, "s": 0.5, "xs": 0.9}
    rows = []
    for test in tests:
        base = rng.normal(4.0, 0.8, n_examples)
        shift = rng.normal(0, 0.4, (n_dists, 1)) * rng.gamma(2.0, 0.5, n_examples)  # how each example reacts
        ref = base + shift
        for size in CORRELATION_RATIOS:
            loss = ref if size == "ref" else 1.3 * ref + noise[size] * rng.normal(0, 0.8, ref.shape)
            for d in range(n_dists):
                rows.append(pd.DataFrame({"test": test, "dist": f"dist{d}", "size": size,
                                          "example_id": np.arange(n_examples), "loss": loss[d]}))  # fmt: skip
    losses = pd.concat(rows, ignore_index=True)
    per_sample = correlation_analysis.per_sample_table(losses, "ref")
    null = correlation_analysis.per_sample_null(losses, "ref", n_perm, seed=0)
    flops = 1e12 / np.array(list(CORRELATION_RATIOS.values()))
    compute = pd.DataFrame({"size": list(CORRELATION_RATIOS), "flops": flops,
                            "compute_ratio": list(CORRELATION_RATIOS.values())})  # fmt: skip
    return per_sample, null, compute


# --- what a reader sees: texts, lines and panels in display coordinates, after a draw --------------------------


def _drawn(module, draw, monkeypatch):
    """The figure ``draw()`` makes with ``module``'s save replaced by one that keeps it, drawn once."""
    kept = []
    monkeypatch.setattr(module, "save", lambda fig, path: kept.append(fig))
    draw()
    (fig,) = kept
    fig.canvas.draw()
    return fig


def _tick_labels(axis):
    """The tick labels ``axis`` draws: visible, non-empty, of ticks inside the view."""
    lo, hi = sorted(axis.get_view_interval())
    span = abs(hi - lo)
    out = []
    for locs, ticks in (
        (axis.get_majorticklocs(), axis.get_major_ticks),
        (axis.get_minorticklocs(), axis.get_minor_ticks),
    ):
        for loc, tick in zip(locs, ticks(len(locs))):
            if lo - 1e-9 * span <= loc <= hi + 1e-9 * span:
                out += [t for t in (tick.label1, tick.label2) if t.get_visible() and t.get_text()]
    return out


def _texts(fig):
    """Every text a reader sees in ``fig``: titles, axis and tick labels, legends, annotations."""
    ticks = [tick for ax in fig.axes for axis in (ax.xaxis, ax.yaxis) for tick in (*axis.majorTicks, *axis.minorTicks)]
    axes_ticks = {id(t) for tick in ticks for t in (tick.label1, tick.label2)}
    drawn = [t for ax in fig.axes for axis in (ax.xaxis, ax.yaxis) for t in _tick_labels(axis)]
    others = [t for t in fig.findobj(Text) if id(t) not in axes_ticks and t.get_visible() and t.get_text().strip()]
    return others + drawn


def _extent(text, renderer):
    return text.get_window_extent(renderer)


def _polylines(ax):
    """(polyline vertices in display coordinates, whether consecutive vertices are joined) for every line,
    error bar, cap and histogram outline drawn in ``ax``."""
    out = []
    for line in ax.get_lines():
        if not line.get_visible():
            continue
        path = line.get_transform().transform_path(line.get_path())
        joined = line.get_linestyle() not in ("None", "", " ", "none")
        out += [(poly, joined) for poly in path.to_polygons(closed_only=False)]
    for artist in (*ax.collections, *ax.patches):
        if not artist.get_visible():
            continue
        transform = artist.get_transform()
        for path in artist.get_paths() if hasattr(artist, "get_paths") else [artist.get_path()]:
            out += [(poly, True) for poly in transform.transform_path(path).to_polygons(closed_only=False)]
    return out


def _hits(box, vertices, joined) -> bool:
    """Whether the polyline ``vertices`` (its points alone unless ``joined``) touches the rectangle ``box``."""
    v = np.asarray(vertices, float)
    v = v[np.isfinite(v).all(1)]
    if not len(v):
        return False
    inside = (v[:, 0] >= box.x0) & (v[:, 0] <= box.x1) & (v[:, 1] >= box.y0) & (v[:, 1] <= box.y1)
    if inside.any() or not joined or len(v) < 2:
        return bool(inside.any())
    (x0, y0), (dx, dy) = v[:-1].T, np.diff(v, axis=0).T  # Liang-Barsky clipping of every segment
    t0, t1 = np.zeros(len(x0)), np.ones(len(x0))
    for p, q in ((-dx, x0 - box.x0), (dx, box.x1 - x0), (-dy, y0 - box.y0), (dy, box.y1 - y0)):
        with np.errstate(divide="ignore", invalid="ignore"):
            t = q / p
        t0 = np.where(p < 0, np.maximum(t0, t), t0)
        t1 = np.where(p > 0, np.minimum(t1, t), t1)
        t1 = np.where((p == 0) & (q < 0), -1.0, t1)
    return bool((t0 <= t1).any())


CLEARANCE = 3.0
"""Points between a text and any line drawn in a panel."""

GAP = 2.0
"""Points between two texts (closer, two titles read as one)."""


def _layout_problems(fig) -> list[str]:
    """What a reader would see wrong in ``fig``: a text outside the saved image, an axes' own text (an
    annotation) outside its panel, any other text inside a panel, two texts on top of each other, or a
    text on a line, an error bar or a histogram outline, or closer to one than ``CLEARANCE`` points (a label
    whose descenders graze a line reads as sitting on it), or two texts closer than ``GAP`` points. Empty
    when the figure is clean."""
    renderer = fig.canvas.get_renderer()
    saved = fig.get_tightbbox(renderer).transformed(fig.dpi_scale_trans)  # what save's bbox_inches="tight" keeps
    texts = [(t, _extent(t, renderer)) for t in _texts(fig)]
    own = {id(t): ax for ax in fig.axes for t in ax.texts}
    problems = []
    for text, box in texts:
        name = repr(text.get_text())
        if not (
            saved.x0 - 1 <= box.x0 and box.x1 <= saved.x1 + 1 and saved.y0 - 1 <= box.y0 and box.y1 <= saved.y1 + 1
        ):
            problems.append(f"{name} is outside the saved image")
        inner = box.padded(-0.5)
        for ax in fig.axes:
            if own.get(id(text)) is ax:
                if not ax.bbox.padded(1).contains(box.x0, box.y0) or not ax.bbox.padded(1).contains(box.x1, box.y1):
                    problems.append(f"{name} runs out of its panel")
            elif inner.overlaps(ax.bbox):
                problems.append(f"{name} is inside a panel it does not belong to")
            clip = Bbox.intersection(box.padded(CLEARANCE * fig.dpi / 72), ax.bbox)
            if clip is not None and any(_hits(clip, v, joined) for v, joined in _polylines(ax)):
                problems.append(f"{name} is on a line")
    for i, (a, box_a) in enumerate(texts):
        for b, box_b in texts[i + 1 :]:
            if box_a.padded(GAP * fig.dpi / 72 / 2).overlaps(box_b.padded(GAP * fig.dpi / 72 / 2)):
                problems.append(f"{a.get_text()!r} overlaps {b.get_text()!r}")
    return problems


def test_the_layout_check_sees_a_label_on_a_line_one_on_another_and_one_out_of_its_panel():
    """The check the figures are held to, on a figure with each fault once (and a clean one)."""
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([1, 10], [1, 1], "-")
    ax.set_xlim(0, 11)
    ax.set_ylim(0, 2)
    fig.canvas.draw()
    assert _layout_problems(fig) == []
    ax.annotate("on the line", (5, 1), ha="center", va="center")
    ax.annotate("beyond", (10.8, 1.8))
    ax.annotate("near", (2, 1), xytext=(0, 1.5), textcoords="offset points", va="bottom")  # 1.5 points above it
    ax.set_title("title")
    fig.text(0.5, 0.95, "over the title", ha="center", va="center")
    fig.text(0.02, 0.02, "left", ha="left")
    left = fig.texts[-1].get_window_extent(fig.canvas.get_renderer())
    fig.text(left.x1 + 1, left.y0, "abutting", transform=None)  # 1 pixel to the right of "left"
    fig.canvas.draw()
    problems = _layout_problems(fig)
    assert "'on the line' is on a line" in problems
    assert "'beyond' runs out of its panel" in problems
    assert "'near' is on a line" in problems
    assert "'left' overlaps 'abutting'" in problems
    assert any(p.startswith("'over the title' overlaps") or p.endswith("overlaps 'over the title'") for p in problems)
    plt.close(fig)


# --- Figure 8 ----------------------------------------------------------------------------------------------------

PAPER_RATIOS = {"37m": 420.0, "124m": 37.0, "353m": 4.6, "760m": 1.0}
PAPER_LOSSES = {"squad": {"random": 3.10, "dsir": 3.01, "classifier": 2.95, "bot_dsdm-760m": 3.40,
                          "dsdm-37m": 2.96, "dsdm-124m": 2.92, "dsdm-353m": 2.86, "dsdm-760m": 2.80}}  # fmt: skip


@pytest.mark.parametrize(
    "losses, ratios, reference",
    [(SELECTION_LOSSES, SELECTION_RATIOS, "d16"), (PAPER_LOSSES, PAPER_RATIOS, "760m")],
    ids=["default sizes, two targets", "paper sizes, one target"],
)
def test_figure_8_names_every_size_with_no_text_on_a_line_another_text_or_outside(
    losses, ratios, reference, monkeypatch
):
    results = selection_results(losses, ratios)
    fig = _drawn(selection_figures, lambda: selection_figures.dsdm_vs_compute(results, reference, "f.png"), monkeypatch)
    assert _layout_problems(fig) == []
    names = [f"{s}\nreference" if s == reference else f"{s}\n{ratio_label(r)}" for s, r in sorted(
        ratios.items(), key=lambda kv: kv[1])]  # fmt: skip
    axes = np.array(fig.axes[: 2 * len(losses)]).reshape(2, len(losses))
    for ax in axes[-1]:  # the sizes name the compute axis's ticks, at their points
        assert [t.get_text() for t in _tick_labels(ax.xaxis)] == names
        assert np.allclose(ax.xaxis.get_majorticklocs(), sorted(ratios.values()))
    for ax in axes.flat:  # every point well inside its panel (the reference's was on the edge)
        assert ax.xaxis_inverted() and ax.get_xscale() == "log"
        x = ax.transData.transform(np.c_[list(ratios.values()), np.ones(len(ratios))])[:, 0]
        margin = 0.04 * ax.bbox.width
        assert (x > ax.bbox.x0 + margin).all() and (x < ax.bbox.x1 - margin).all()
        assert not ax.texts  # no labels among the lines
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[:4] == ["random", "DSIR", "Classifier", f"Bot-DsDm ({reference})"] and legend[4].startswith("DsDm")
    plt.close(fig)


# --- Figure 5 ----------------------------------------------------------------------------------------------------


def test_figure_5_has_a_panel_per_test_and_proxy_with_that_proxys_own_null_named_in_the_figure(monkeypatch):
    """Known answer: proxy a's observed values all 0.92 and its null all 0.12; proxy b's 0.52 and 0.72 (the nulls
    differ, so a null pooled over proxies would show both peaks in each panel); 3 permutations."""
    per_sample = pd.DataFrame({"test": "t1", "size": ["a"] * 10 + ["b"] * 10, "example_id": list(range(10)) * 2,
                               "r2": [0.92] * 10 + [0.52] * 10})  # fmt: skip
    null = pd.DataFrame({"test": "t1", "size": ["a"] * 30 + ["b"] * 30, "r2": [0.12] * 30 + [0.72] * 30})
    per_sample = pd.concat([per_sample, per_sample.assign(test="t2")], ignore_index=True)
    null = pd.concat([null, null.assign(test="t2")], ignore_index=True)
    compute = pd.DataFrame({"size": ["ref", "a", "b"], "compute_ratio": [1.0, 4.0, 20.0]})
    fig = _drawn(correlation_figures, lambda: correlation_figures.per_sample_hist(per_sample, null, compute, "f.png"),
                 monkeypatch)  # fmt: skip
    axes = np.array(fig.axes).reshape(2, 2)
    assert [ax.get_title() for ax in axes[0]] == ["proxy a\n4.0x less compute", "proxy b\n20x less compute"]
    assert [ax.get_ylabel().split("\n")[0] for ax in axes[:, 0]] == ["t1", "t2"]
    for ax in axes.flat:
        assert ax.get_shared_x_axes().joined(ax, axes[0, 0]) and ax.get_shared_y_axes().joined(ax, axes[0, 0])
    for row in axes:
        for ax, (observed_at, null_at) in zip(row, [(0.92, 0.12), (0.52, 0.72)]):
            filled, outline = ax.patches
            assert filled.get_fill() and not outline.get_fill() and outline.get_edgecolor()[:3] == (0.0, 0.0, 0.0)
            for patch, at in ((filled, observed_at), (outline, null_at)):
                v = patch.get_path().vertices
                tall = v[v[:, 1] > 0.99]  # every value in one bin: a share of 1 there and nowhere else
                assert len(tall) and (tall[:, 0].min() <= at <= tall[:, 0].max()) and np.ptp(tall[:, 0]) <= 0.05 + 1e-9
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == [
        "observed: proxy vs reference, per example",
        "null: training distributions shuffled (3 permutations)",
    ]
    assert "null" in fig.get_suptitle() and "shuffled" in fig.get_suptitle() and "3 permutations" in fig.get_suptitle()
    assert _layout_problems(fig) == []
    plt.close(fig)


@pytest.mark.parametrize(
    "tests, proxies",
    [(("c4", "pile", "squad", "lambada", "hellaswag", "triviaqa"), ("l", "m", "s", "xs")),
     (("c4",), ("l", "m", "s", "xs")),
     (("c4", "pile", "squad", "lambada"), ("l",))],
    ids=["six tests, four proxies", "one test", "one proxy (the tiny run)"],
)  # fmt: skip
def test_figure_5_on_default_shaped_inputs_has_no_text_on_a_line_another_text_or_outside(tests, proxies, monkeypatch):
    per_sample, null, compute = correlation_inputs(n_examples=120, tests=tests, n_perm=5)
    per_sample, null = per_sample[per_sample["size"].isin(proxies)], null[null["size"].isin(proxies)]
    fig = _drawn(correlation_figures, lambda: correlation_figures.per_sample_hist(per_sample, null, compute, "f.png"),
                 monkeypatch)  # fmt: skip
    assert len(fig.axes) == len(proxies) * len(tests)
    assert [ax.get_title().split("\n")[0] for ax in fig.axes[: len(proxies)]] == [f"proxy {p}" for p in proxies]
    assert _layout_problems(fig) == []
    plt.close(fig)


def test_figures_5_and_8_are_written_as_png_and_svg_the_same_bytes_every_time(tmp_path):
    results = selection_results()
    per_sample, null, compute = correlation_inputs(n_examples=60, tests=("c4",), n_perm=3)
    for run in ("a", "b"):
        selection_figures.dsdm_vs_compute(results, "d16", tmp_path / run / "fig8.png")
        correlation_figures.per_sample_hist(per_sample, null, compute, tmp_path / run / "fig5.png")
    for name in ("fig8.png", "fig8.svg", "fig5.png", "fig5.svg"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
