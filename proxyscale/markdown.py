"""Markdown pieces shared by the three reports: tables, values with intervals, figure links, and the
report rendered as one self-contained HTML page (:func:`markdown_html`, what Snakemake's HTML report
shows: it offers a markdown file only as a download)."""

from __future__ import annotations

import base64
import html
import math
import mimetypes
import os
import re
from pathlib import Path

import pandas as pd

from proxyscale.io import save_text


def md_table(df: pd.DataFrame, floatfmt: str = ".3f") -> str:
    """A GitHub-flavoured markdown table (floats formatted with ``floatfmt``, NaN shown as '-')."""

    def cell(v):
        if isinstance(v, float):
            return "-" if math.isnan(v) else format(v, floatfmt)
        return str(v)

    header = "| " + " | ".join(map(str, df.columns)) + " |"
    rule = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def with_ci(value: float, lo: float, hi: float, fmt: str = ".2f") -> str:
    """``value [lo, hi]``, or '-' where the value is undefined."""
    return "-" if math.isnan(value) else f"{value:{fmt}} [{lo:{fmt}}, {hi:{fmt}}]"


def figure_links(report_path: str, figures: dict[str, str]) -> dict[str, str]:
    """Figure paths (by key) relative to the report's folder, as the report's image links need."""
    here = os.path.dirname(report_path)
    return {key: os.path.relpath(path, here) for key, path in figures.items()}


_INLINE = re.compile(r"`([^`]+)`|!\[([^\]]*)\]\(([^)\s]+)\)|\[([^\]]+)\]\(([^)\s]+)\)|\*\*(.+?)\*\*")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*$")
_RULE = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?$")
_ITEM = re.compile(r"^\s*(?:([-*+])|(\d+)\.)\s+(.*)$")
_IMAGE = re.compile(r"^!\[([^\]]*)\]\(([^)\s]+)\)$")

_STYLE = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2328; background: #fff;
  max-width: 72rem; margin: 0 auto; padding: 1.5rem 2rem 3rem; }
h1 { font-size: 1.6rem; border-bottom: 1px solid #d0d7de; padding-bottom: .3rem; }
h2 { font-size: 1.3rem; border-bottom: 1px solid #d0d7de; padding-bottom: .2rem; margin-top: 2rem; }
h3 { font-size: 1.1rem; }
.table { overflow-x: auto; margin: 1rem 0; }
table { border-collapse: collapse; font-size: .9rem; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d0d7de; padding: .25rem .6rem; text-align: left; white-space: nowrap; }
th { background: #f6f8fa; }
tr:nth-child(even) td { background: #fafbfc; }
code { background: #eff1f3; border-radius: 4px; padding: .1rem .3rem; font-size: .9em; }
pre { background: #f6f8fa; padding: .8rem; overflow-x: auto; }
figure { margin: 1.5rem 0; }
figure img { max-width: 100%; height: auto; }
figcaption { color: #59636e; font-size: .9rem; }
"""


def _data_uri(path: Path) -> str:
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def _inline(text: str, image) -> str:
    """One line of markdown text as HTML: code spans, images, links and bold; everything else escaped."""
    out, pos = [], 0
    for m in _INLINE.finditer(text):
        code, alt, src, label, href, bold = m.groups()
        out.append(html.escape(text[pos : m.start()], quote=False))
        if code is not None:
            out.append(f"<code>{html.escape(code, quote=False)}</code>")
        elif src is not None:
            out.append(image(alt, src))
        elif href is not None:
            out.append(f'<a href="{html.escape(href)}">{_inline(label, image)}</a>')
        else:
            out.append(f"<strong>{_inline(bold, image)}</strong>")
        pos = m.end()
    out.append(html.escape(text[pos:], quote=False))
    return "".join(out)


def _cells(row: str) -> list[str]:
    row = row.strip()
    row = row[1:] if row.startswith("|") else row
    row = row[:-1] if row.endswith("|") and not row.endswith("\\|") else row
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", row)]


def _starts_block(lines: list[str], i: int) -> bool:
    line = lines[i]
    table = line.lstrip().startswith("|") and i + 1 < len(lines) and _RULE.match(lines[i + 1].strip())
    return bool(_HEADING.match(line) or _ITEM.match(line) or table or line.startswith(("```", ">")))


def markdown_html(text: str, folder: str | Path) -> str:
    """The markdown of a report as one self-contained HTML page: headings, paragraphs, lists, pipe tables,
    code, bold, links, and each image linked relative to ``folder`` embedded as a data URI (a figure with
    its alt text as caption), so the page shows its figures wherever it is opened, Snakemake's HTML
    report included. Covers the markdown the reports write; the same text gives the same bytes."""
    folder = Path(folder)

    def image(alt: str, src: str) -> str:
        path = folder / src
        uri = _data_uri(path) if "://" not in src and path.is_file() else src
        return f'<img src="{html.escape(uri)}" alt="{html.escape(alt)}">'

    lines, body, title, i = text.splitlines(), [], "", 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
        elif line.startswith("```"):
            end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), len(lines))
            body.append(f"<pre><code>{html.escape(chr(10).join(lines[i + 1 : end]), quote=False)}</code></pre>")
            i = end + 1
        elif m := _HEADING.match(line):
            level, words = len(m[1]), m[2]
            title = title or (words if level == 1 else "")
            body.append(f"<h{level}>{_inline(words, image)}</h{level}>")
            i += 1
        elif m := _IMAGE.match(line.strip()):
            caption = f"<figcaption>{html.escape(m[1], quote=False)}</figcaption>" if m[1] else ""
            body.append(f"<figure>{image(m[1], m[2])}{caption}</figure>")
            i += 1
        elif _starts_block(lines, i) and line.lstrip().startswith("|"):
            head, i = _cells(line), i + 2
            rows = []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                rows.append(_cells(lines[i]))
                i += 1
            th = "".join(f"<th>{_inline(c, image)}</th>" for c in head)
            trs = "".join("<tr>" + "".join(f"<td>{_inline(c, image)}</td>" for c in r) + "</tr>" for r in rows)
            body.append(f'<div class="table"><table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table></div>')
        elif m := _ITEM.match(line):
            tag, items = ("ul" if m[1] else "ol"), []
            while i < len(lines) and lines[i].strip():
                if item := _ITEM.match(lines[i]):
                    items.append(item[3])
                else:  # a continuation line of the item above
                    items[-1] += " " + lines[i].strip()
                i += 1
            body.append(f"<{tag}>" + "".join(f"<li>{_inline(x, image)}</li>" for x in items) + f"</{tag}>")
        else:
            quote = line.startswith(">")
            words = []
            while i < len(lines) and lines[i].strip() and (not words or not _starts_block(lines, i)):
                words.append(lines[i].lstrip("> ").strip() if quote else lines[i].strip())
                i += 1
            paragraph = f"<p>{_inline(' '.join(words), image)}</p>"
            body.append(f"<blockquote>{paragraph}</blockquote>" if quote else paragraph)
    plain = re.sub(r"[`*]", "", title)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(plain, quote=False)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def save_report(text: str, md_path: str | Path, html_path: str | Path) -> None:
    """A report's markdown at ``md_path`` and its HTML rendering (:func:`markdown_html`, figures linked
    relative to the markdown's folder) at ``html_path``."""
    save_text(text, md_path)
    save_text(markdown_html(text, Path(md_path).parent), html_path)
