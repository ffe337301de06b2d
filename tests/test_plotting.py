"""Figure style shared by every experiment."""

from __future__ import annotations

from proxyscale.plotting import ratio_label, styles


def test_every_distribution_gets_its_own_look_whatever_their_number():
    names = [f"dist{i}" for i in range(25)]
    looks = styles(names)
    assert len({(tuple(v["color"]), v["marker"]) for v in looks.values()}) == 25
    assert looks["dist0"]["marker"] == "o" and looks["dist10"]["marker"] == "s"


def test_ratio_labels():
    assert ratio_label(300.6) == "301x" and ratio_label(6.42) == "6.4x"
