"""Plot style and writing shared by the figures of every experiment.

Importing this module selects matplotlib's file-only backend and the seaborn theme, so every figure
module imports it before pyplot is used.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

from proxyscale.io import atomic_path  # noqa: E402

sns.set_theme(style="whitegrid", context="paper", font_scale=1.1)


def save(fig, png_path: str | Path) -> None:
    """Write ``fig`` as PNG at ``png_path`` and as SVG beside it, atomically, then close it. The SVG is the
    same bytes for the same figure (no date, element ids from a fixed salt rather than random ones), so a
    rerun that changes nothing changes no file."""
    png_path = Path(png_path)
    for path in (png_path, png_path.with_suffix(".svg")):
        svg = path.suffix == ".svg"
        fixed = {"metadata": {"Date": None}} if svg else {}
        with atomic_path(path) as tmp, plt.rc_context({"svg.hashsalt": "proxyscale"} if svg else {}):
            fig.savefig(tmp, dpi=150, bbox_inches="tight", format=path.suffix[1:], **fixed)
    plt.close(fig)


def palette(names) -> dict:
    """One tab10 colour per name, in order."""
    return dict(zip(names, sns.color_palette("tab10", len(names))))


MARKERS = ("o", "s", "D", "P")  # training distributions drawn from the sources
INDUCED_MARKERS = ("^", "v", "X", "*")  # selection-induced training distributions


def styles(names, induced=()) -> dict[str, dict]:
    """A distinct (colour, marker) pair per name, whatever their number: circles for the names drawn
    from sources and triangles for those in ``induced`` (selection-induced distributions, as the paper's
    Figure 1 marks them), each kind taking tab10's colours in order and a new marker after every ten
    names of its kind, so no two training distributions ever look alike in a figure."""
    colors = sns.color_palette("tab10", 10)
    seen = {False: 0, True: 0}
    out = {}
    for name in names:
        kind = name in induced
        markers, i = (INDUCED_MARKERS if kind else MARKERS), seen[kind]
        out[name] = {"color": colors[i % 10], "marker": markers[(i // 10) % len(markers)]}
        seen[kind] += 1
    return out


INDUCED_NOTE = "triangles: selection-induced distributions"


def ratio_label(ratio: float) -> str:
    """A compute ratio as the figures print it: '12x', or '3.4x' below 10."""
    return f"{ratio:.0f}x" if ratio >= 10 else f"{ratio:.1f}x"
