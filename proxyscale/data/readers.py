"""Readers that turn the public corpora's file formats into lists of plain-text documents.

Each reader takes a path (plain, ``.xz``, ``.bz2`` or ``.gz``) and yields plain-text documents; bytes
are read through :mod:`proxyscale.data.files`, so damaged files and missing fields are one
:class:`DataError` naming the file (``encoding`` and ``decode_errors`` entries pass through). They
read the full-size public files as well as the small samples under ``data/``: nothing here depends on
the sample's size, and the record-per-line formats (JSON lines, CSV) stream, so a multi-GB file is
never held in memory. Formats that hold one long text (a book, a WikiText dump) are cut into documents at
natural boundaries (paragraph groups, article headings) so that the train/holdout split can be made at
the document level.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from proxyscale.data.files import open_text
from proxyscale.errors import DataError


def read_text(path: str | Path, **text) -> str:
    """Whole file as one string with CRLF/CR normalised to LF (``text``: options of :func:`open_text`)."""
    with open_text(path, **text) as f:
        return f.read().replace("\r\n", "\n").replace("\r", "\n")


def iter_jsonl(path: str | Path, **text) -> Iterator[dict]:
    """JSON objects of a JSON-lines file, with the line number in any parse error."""
    with open_text(path, **text) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{lineno}: a JSON {type(row).__name__}, not an object (record)")
            yield row


def chunk_paragraphs(text: str, chunk_chars: int) -> list[str]:
    """Group consecutive blank-line-separated paragraphs into documents of about ``chunk_chars``."""
    docs, current, size = [], [], 0
    for para in re.split(r"\n\s*\n", text):
        para = para.strip("\n")
        if not para.strip():
            continue
        current.append(para)
        size += len(para)
        if size >= chunk_chars:
            docs.append("\n\n".join(current))
            current, size = [], 0
    if current:
        docs.append("\n\n".join(current))
    return docs


def read_plain_text(path: str | Path, chunk_chars: int = 2000, **text) -> list[str]:
    """A single long text (e.g. Tiny Shakespeare) cut into paragraph groups."""
    return chunk_paragraphs(read_text(path, **text), chunk_chars)


_GUTENBERG_START = re.compile(r"^\*\*\* ?START OF (THE|THIS) PROJECT GUTENBERG.*$", re.M)
_GUTENBERG_END = re.compile(r"^\s*\*\*\* ?END OF (THE|THIS) PROJECT GUTENBERG.*$", re.M)


def strip_gutenberg(text: str) -> str:
    """The body of a Project Gutenberg e-book, without its licence header and footer."""
    start, end = _GUTENBERG_START.search(text), _GUTENBERG_END.search(text)
    if start is None or end is None or end.start() < start.end():
        raise DataError("not a Project Gutenberg text: no '*** START OF ...' / '*** END OF ...' markers")
    return text[start.end() : end.start()]


def read_gutenberg(path: str | Path, chunk_chars: int = 2000, **text) -> list[str]:
    """A Project Gutenberg e-book: licence stripped, then cut into paragraph groups."""
    content = read_text(path, **text)
    try:
        body = strip_gutenberg(content)
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from None
    return chunk_paragraphs(body, chunk_chars)


_WIKITEXT_TITLE = re.compile(r"^ = [^=].* = $", re.M)


def read_wikitext(path: str | Path, **text) -> list[str]:
    """WikiText raw: one document per article, articles start at `` = Title = `` lines."""
    content = read_text(path, **text)
    starts = [m.start() for m in _WIKITEXT_TITLE.finditer(content)]
    if not starts:
        raise DataError(f"{path}: no WikiText article headings (' = Title = ') found")
    bounds = zip(starts, starts[1:] + [len(content)])
    return [doc for a, b in bounds if (doc := content[a:b].strip())]


def _squash(s: str) -> str:
    return " ".join(s.split())


def iter_arxiv_csv(path: str | Path, **text) -> Iterator[str]:
    """arXiv metadata CSV: one document per paper, ``title`` then ``abstract``."""
    with open_text(path, **text) as f:
        reader = csv.DictReader(f)
        try:
            missing = {"title", "abstract"} - set(reader.fieldnames or [])
            if missing:
                raise DataError(f"{path}: CSV lacks column(s) {sorted(missing)}")
            for r in reader:
                if r["abstract"]:
                    yield f"{_squash(r['title'] or '')}\n\n{_squash(r['abstract'])}"
        except csv.Error as exc:
            raise DataError(f"{path}:{reader.line_num}: not valid CSV ({exc})") from None


def iter_s2orc_jsonl(path: str | Path, **text) -> Iterator[str]:
    """S2ORC JSON lines: full text at ``content.text``, else ``title`` + ``abstract`` (rows without skipped)."""
    for row in iter_jsonl(path, **text):
        content = row.get("content")
        if isinstance(content, dict) and content.get("text"):
            yield content["text"].strip()
        elif row.get("abstract"):
            yield f"{_squash(row.get('title') or '')}\n\n{_squash(row['abstract'])}".strip()


def iter_jsonl_text(path: str | Path, field: str = "text", **text) -> Iterator[str]:
    """JSON lines with the document at ``field`` (web text, C4, markdown READMEs, LAMBADA)."""
    for i, row in enumerate(iter_jsonl(path, **text), 1):
        if field not in row:
            raise DataError(f"{path}: record {i} has no field '{field}' (fields: {', '.join(row) or 'none'})")
        if not isinstance(row[field], str | None):
            raise DataError(f"{path}: record {i} field '{field}' is a {type(row[field]).__name__}, not text")
        if row[field]:
            yield row[field]


def read_jsonl_text(path: str | Path, field: str = "text", **text) -> list[str]:
    """All documents of :func:`iter_jsonl_text`, for the test sets (which are small)."""
    return list(iter_jsonl_text(path, field, **text))


READERS: dict[str, Callable[..., Iterable[str]]] = {
    "plain_text": read_plain_text,
    "gutenberg": read_gutenberg,
    "wikitext": read_wikitext,
    "arxiv_csv": iter_arxiv_csv,
    "s2orc_jsonl": iter_s2orc_jsonl,
    "jsonl": iter_jsonl_text,
}


def read_documents(path: str | Path, fmt: str, **options) -> Iterator[str]:
    """Documents of one source file in format ``fmt`` (a key of :data:`READERS`), as they are read;
    a file that yields none is an error (raised once it is exhausted)."""
    if fmt not in READERS:
        raise DataError(f"{path}: unknown format '{fmt}' (known: {', '.join(sorted(READERS))})")
    count = 0
    for doc in READERS[fmt](path, **options):
        count += 1
        yield doc
    if not count:
        raise DataError(f"{path}: no documents read as format '{fmt}'")
