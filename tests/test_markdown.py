"""Markdown pieces shared by the reports."""

from __future__ import annotations

import pandas as pd

from proxyscale.markdown import figure_links, markdown_html, md_table, save_report, with_ci


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


def test_markdown_html_renders_the_reports_markdown_as_one_page(tmp_path):
    (tmp_path / "fig.png").write_bytes(b"\x89PNG fake")
    text = "\n".join(
        [
            "# Title: a <b> & `code`",
            "",
            "First line of a paragraph",
            "and its second line with **bold** and `x < y`.",
            "",
            "- **c4**: one item",
            "- two, with a [link](https://example.org)",
            "",
            "| size | r2 |",
            "|---|---|",
            "| a | 0.1 |",
            "| b **c** | - |",
            "",
            "![Figure 1: scatter](fig.png)",
            "",
            "![gone](missing.png)",
            "",
            "```",
            "raw <text> **as is**",
            "```",
        ]
    )
    page = markdown_html(text, tmp_path)
    assert page.startswith("<!DOCTYPE html>") and "<title>Title: a &lt;b&gt; &amp; code</title>" in page
    body = page.split("<body>\n", 1)[1]
    assert body.splitlines() == [
        "<h1>Title: a &lt;b&gt; &amp; <code>code</code></h1>",
        "<p>First line of a paragraph and its second line with <strong>bold</strong> and <code>x &lt; y</code>.</p>",
        '<ul><li><strong>c4</strong>: one item</li><li>two, with a <a href="https://example.org">link</a></li></ul>',
        '<div class="table"><table><thead><tr><th>size</th><th>r2</th></tr></thead><tbody><tr><td>a</td><td>0.1</td>'
        "</tr><tr><td>b <strong>c</strong></td><td>-</td></tr></tbody></table></div>",
        '<figure><img src="data:image/png;base64,iVBORyBmYWtl" alt="Figure 1: scatter">'
        "<figcaption>Figure 1: scatter</figcaption></figure>",
        '<figure><img src="missing.png" alt="gone"><figcaption>gone</figcaption></figure>',
        "<pre><code>raw &lt;text&gt; **as is**</code></pre>",
        "</body>",
        "</html>",
    ]
    assert markdown_html(text, tmp_path) == page  # the same markdown gives the same bytes


def test_save_report_writes_the_markdown_and_its_page(tmp_path):
    save_report("# R\n\nx\n", tmp_path / "report.md", tmp_path / "report.html")
    assert (tmp_path / "report.md").read_text() == "# R\n\nx\n"
    assert "<h1>R</h1>\n<p>x</p>" in (tmp_path / "report.html").read_text()
