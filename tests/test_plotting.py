"""Figure style shared by every experiment."""

from __future__ import annotations

from proxyscale.plotting import ratio_label, styles


def test_every_distribution_gets_its_own_look_whatever_their_number():
    names = [f"dist{i}" for i in range(25)]
    looks = styles(names)
    assert len({(tuple(v["color"]), v["marker"]) for v in looks.values()}) == 25
    assert looks["dist0"]["marker"] == "o" and looks["dist10"]["marker"] == "s"


def test_selection_induced_distributions_are_triangles_and_the_sources_circles():
    names = ["arxiv", "books", "lambada-dsdm", "markdown", "lambada-dsir"] + [f"s{i}" for i in range(8)]
    looks = styles(names, induced=["lambada-dsdm", "lambada-dsir"])
    assert [looks[n]["marker"] for n in names[:5]] == ["o", "o", "^", "o", "^"]
    assert looks["arxiv"]["color"] == looks["lambada-dsdm"]["color"]  # each kind takes tab10 in order
    assert looks["s7"]["marker"] == "s" and looks["s7"]["color"] == looks["arxiv"]["color"]  # the 11th source
    assert len({(tuple(v["color"]), v["marker"]) for v in looks.values()}) == len(names)
    many = styles([f"s{i}" for i in range(12)] + [f"x{i}" for i in range(12)], induced=[f"x{i}" for i in range(12)])
    assert many["s10"]["marker"] == "s" and many["x9"]["marker"] == "^" and many["x10"]["marker"] == "v"
    assert len({(tuple(v["color"]), v["marker"]) for v in many.values()}) == 24


def test_ratio_labels():
    assert ratio_label(300.6) == "301x" and ratio_label(6.42) == "6.4x"


def test_a_figure_saved_twice_is_the_same_bytes(tmp_path):
    """No date and no random element ids in the SVG, so a rerun that changes nothing changes no file."""
    import matplotlib.pyplot as plt
    import numpy as np

    from proxyscale.plotting import save

    for name in ("a", "b"):
        fig, ax = plt.subplots()
        ax.plot([1, 2, 3], [3, 1, 2], "o-", clip_on=True)
        ax.imshow(np.arange(16.0).reshape(4, 4), extent=(1, 2, 1, 2))
        save(fig, tmp_path / f"{name}.png")
    for suffix in (".png", ".svg"):
        assert (tmp_path / f"a{suffix}").read_bytes() == (tmp_path / f"b{suffix}").read_bytes()
