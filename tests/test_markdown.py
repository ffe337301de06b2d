"""Markdown pieces shared by the reports."""

from __future__ import annotations

import pandas as pd

from proxyscale.markdown import figure_links, md_table, with_ci


def test_md_table_formats_floats_and_shows_nan_as_a_dash():
    table = md_table(pd.DataFrame({"size": ["a", "b"], "r2": [0.12345, float("nan")], "n": [3, 4]}))
    assert table.splitlines() == ["| size | r2 | n |", "|---|---|---|", "| a | 0.123 | 3 |", "| b | - | 4 |"]


def test_with_ci_and_undefined_values():
    assert with_ci(0.5, 0.25, 0.75) == "0.50 [0.25, 0.75]"
    assert with_ci(0.5, 0.25, 0.75, ".3f") == "0.500 [0.250, 0.750]"
    assert with_ci(float("nan"), 0.0, 1.0) == "-"


def test_figure_links_are_relative_to_the_report():
    links = figure_links("results/a/report/report.md", {"f": "results/a/report/f.png", "g": "results/a/g.png"})
    assert links == {"f": "f.png", "g": "../g.png"}
