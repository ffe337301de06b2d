"""The HTML report of a finished run (``snakemake --report``, which the run's summary recommends): a front
page that describes the workflow, one category per experiment whose first item is its report (report.md
rendered as a page), and every figure with a caption (rules/report/<figure>.rst) that says what it shows.

The report keeps its data as JavaScript assignments inside the page (``var results = {...};``): each item's
caption (HTML), labels, job parameters and content (a base64 data URI), the categories, the workflow
description and the rules; the tests read them from there."""

from __future__ import annotations

import base64
import html
import json
import re

import pytest

from conftest import REPO, run_snakemake

pytestmark = pytest.mark.workflow

ITEMS = {
    "Scale correlation": (
        "results/correlation",
        ["fig1_scatter", "fig2_r2_vs_compute", "fig3_r2_vs_accuracy", "fig4_per_sample", "fig5_per_sample_r2"]
        + ["fig6_reliability", "training_curves"],
        "correlation_report",
    ),
    "Data attribution": (
        "results/attribution/report",
        ["fig6_lds_vs_compute", "fig7_top_k_overlap", "lds_vs_checkpoints", "rank_correlation", "top_k_examples"],
        "lds_report",
    ),
    "Dataset selection": ("results/selection/report", ["fig8_dsdm_vs_compute", "composition"], "dsdm_report"),
}
"""Per category: the folder of the experiment's report, its figures and the caption of its report."""
CAPTIONS = REPO / "rules/report"


def report_data(page: str, name: str):
    """The value the report assigns to ``var <name>`` (JSON)."""
    m = re.search(rf"^\s*var {name} = (?=[{{\[\"])", page, re.M)
    assert m, f"no 'var {name} = ...' in the report"
    return json.JSONDecoder().raw_decode(page, m.end())[0]


def text(fragment: str) -> str:
    """An HTML fragment as plain text, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def decoded(data_uri: str) -> str:
    return base64.b64decode(data_uri.split(";base64,", 1)[1]).decode()


@pytest.fixture(scope="module")
def report(tiny_run, tmp_path_factory) -> dict:
    path = tmp_path_factory.mktemp("html_report") / "report.html"
    result = run_snakemake(tiny_run, "--report", str(path))
    assert result.returncode == 0, result.stderr[-3000:]
    page = path.read_text()
    return {name: report_data(page, name) for name in ("results", "categories", "workflow_desc", "rules")}


def test_every_experiment_is_a_category_led_by_its_report_then_its_figures(report):
    assert set(report["categories"]) == set(ITEMS)
    for category, (folder, figures, _) in ITEMS.items():
        (paths,) = report["categories"][category].values()  # one list, shown as soon as the category opens
        assert sorted(paths) == sorted([f"{folder}/report.html"] + [f"{folder}/{f}.png" for f in figures])
        ordered = sorted(paths, key=lambda p: int(report["results"][p]["labels"]["#"]))  # the table's order
        assert ordered[0] == f"{folder}/report.html" and report["results"][ordered[0]]["labels"]["item"] == "Report"


def test_each_report_is_readable_in_the_page_with_its_headline_and_figures(report, tiny_run):
    for folder, _, _ in ITEMS.values():
        markdown = (tiny_run / folder / "report.md").read_text()
        headline = next(line[2:] for line in markdown.splitlines() if line.startswith("# "))
        item = report["results"][f"{folder}/report.html"]
        assert item["mime_type"] == "text/html"  # shown in the page; a .md would only be offered as a download
        page = decoded(item["data_uri"])
        assert page == (tiny_run / folder / "report.html").read_text()
        assert f"<h1>{html.escape(headline, quote=False)}</h1>" in page and headline in text(page)
        # every figure the markdown links is in the page itself, and no markdown syntax is left
        assert page.count('<img src="data:image/png;base64,') == markdown.count("](") > 0
        assert "|---|" not in page and "**" not in text(page)


def test_every_item_has_its_caption(report):
    for folder, figures, report_caption in ITEMS.values():
        for name, path in [(report_caption, f"{folder}/report.html")] + [(f, f"{folder}/{f}.png") for f in figures]:
            caption = report["results"][path]["caption"]
            rst = (CAPTIONS / f"{name}.rst").read_text()
            lead = " ".join(re.match(r"\*\*(.+?)\*\*", rst, re.S)[1].split())  # every caption opens in bold
            assert f"<strong>{html.escape(lead, quote=False)}</strong>" in " ".join(caption.split()), path
            # the rest is there too, its config values filled in, and docutils found nothing to complain of
            assert len(text(caption)) > 300 and "{{" not in caption and "{%" not in caption, path
            assert "system-message" not in caption, path
    fig1 = text(report["results"]["results/correlation/fig1_scatter.png"]["caption"])
    assert "the reference ref trained on" in fig1 and "selection-induced ones (lambada-dsdm-d8)." in fig1


def test_the_front_page_describes_the_workflow_and_links_each_experiment(report):
    desc = report["workflow_desc"]
    assert "Small-to-Large Generalization" in text(desc) and "arxiv.org/abs/2505.16260" in desc
    for category in ITEMS:
        assert f"javascript:app.showCategory('{category.replace(' ', '%20')}')" in desc
    assert "tiny, ref" in text(desc) and "system-message" not in desc  # the config's sizes, filled in


def test_no_figure_lists_a_params_entry_per_input(report):
    """Each item shows its job's params: a list with an entry per loss table (330 in the default config, 726
    in the run the issue was filed from) buried every figure's details."""
    for path, item in report["results"].items():
        params = item["job_properties"]["params"]
        assert "loss_keys=" not in params and "runs=[(" not in params and len(params) < 600, path


def test_svgs_are_outputs_of_the_report_jobs(report, tiny_run):
    """Every figure's SVG is a declared output (tracked, cleaned, in the DAG), beside its PNG."""
    for rule, (folder, figures, _) in zip(("correlation", "lds", "dsdm"), ITEMS.values()):
        outputs = report["rules"][rule]["output"]
        for figure in figures:
            assert f"{folder}/{figure}.svg" in outputs and f"{folder}/{figure}.png" in outputs
            assert (tiny_run / folder / f"{figure}.svg").read_bytes().lstrip().startswith(b"<?xml")
    result = run_snakemake(tiny_run, "--list-untracked")
    assert result.returncode == 0, result.stderr[-3000:]
    untracked = (result.stdout + result.stderr).splitlines()
    assert not [f for f in untracked if f.endswith((".svg", ".html", ".png"))]
