"""Readers that turn the public corpora's file formats into lists of plain-text documents.

Each reader takes a path (plain, ``.xz``, ``.bz2`` or ``.gz``) and yields plain-text documents. They
read the full-size public files as well as the small samples under ``data/``: nothing here depends on
the sample's size, and the record-per-line formats (JSON lines, CSV) stream, so a multi-GB file is
never held in memory. Formats that hold one long text (a book, a WikiText dump) are cut into documents at
natural boundaries (paragraph groups, article headings) so that the train/holdout split can be made at
the document level.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
import lzma
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from proxyscale.errors import DataError

_OPENERS = {".xz": lzma.open, ".bz2": bz2.open, ".gz": gzip.open}


def open_text(path: str | Path) -> io.TextIOBase:
    """Open a possibly compressed UTF-8 text file (BOM stripped, newlines left as they are)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    opener = _OPENERS.get(path.suffix, open)
    return opener(path, "rt", encoding="utf-8-sig", newline="")


def read_text(path: str | Path) -> str:
    """Whole file as one string with CRLF/CR normalised to LF."""
    with open_text(path) as f:
        return f.read().replace("\r\n", "\n").replace("\r", "\n")


def iter_jsonl(path: str | Path) -> Iterator[dict]:
    """JSON objects of a JSON-lines file, with the line number in any parse error."""
    with open_text(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None


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


def read_plain_text(path: str | Path, chunk_chars: int = 2000) -> list[str]:
    """A single long text (e.g. Tiny Shakespeare) cut into paragraph groups."""
    return chunk_paragraphs(read_text(path), chunk_chars)


_GUTENBERG_START = re.compile(r"^\*\*\* ?START OF (THE|THIS) PROJECT GUTENBERG.*$", re.M)
_GUTENBERG_END = re.compile(r"^\s*\*\*\* ?END OF (THE|THIS) PROJECT GUTENBERG.*$", re.M)


def strip_gutenberg(text: str) -> str:
    """The body of a Project Gutenberg e-book, without its licence header and footer."""
    start, end = _GUTENBERG_START.search(text), _GUTENBERG_END.search(text)
    if start is None or end is None or end.start() < start.end():
        raise DataError("not a Project Gutenberg text: no '*** START OF ...' / '*** END OF ...' markers")
    return text[start.end() : end.start()]


def read_gutenberg(path: str | Path, chunk_chars: int = 2000) -> list[str]:
    """A Project Gutenberg e-book: licence stripped, then cut into paragraph groups."""
    try:
        body = strip_gutenberg(read_text(path))
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from None
    return chunk_paragraphs(body, chunk_chars)


_WIKITEXT_TITLE = re.compile(r"^ = [^=].* = $", re.M)


def read_wikitext(path: str | Path) -> list[str]:
    """WikiText raw: one document per article, articles start at `` = Title = `` lines."""
    text = read_text(path)
    starts = [m.start() for m in _WIKITEXT_TITLE.finditer(text)]
    if not starts:
        raise DataError(f"{path}: no WikiText article headings (' = Title = ') found")
    bounds = zip(starts, starts[1:] + [len(text)])
    return [doc for a, b in bounds if (doc := text[a:b].strip())]


def _squash(s: str) -> str:
    return " ".join(s.split())


def iter_arxiv_csv(path: str | Path) -> Iterator[str]:
    """arXiv metadata CSV: one document per paper, ``title`` then ``abstract``."""
    with open_text(path) as f:
        reader = csv.DictReader(f)
        missing = {"title", "abstract"} - set(reader.fieldnames or [])
        if missing:
            raise DataError(f"{path}: CSV lacks column(s) {sorted(missing)}")
        for r in reader:
            if r["abstract"]:
                yield f"{_squash(r['title'])}\n\n{_squash(r['abstract'])}"


def iter_s2orc_jsonl(path: str | Path) -> Iterator[str]:
    """S2ORC JSON lines: full text at ``content.text``, else ``title`` + ``abstract`` (rows without skipped)."""
    for row in iter_jsonl(path):
        content = row.get("content")
        if isinstance(content, dict) and content.get("text"):
            yield content["text"].strip()
        elif row.get("abstract"):
            yield f"{_squash(row.get('title') or '')}\n\n{_squash(row['abstract'])}".strip()


def iter_jsonl_text(path: str | Path, field: str = "text") -> Iterator[str]:
    """JSON lines with the document at ``field`` (web text, C4, markdown READMEs, LAMBADA)."""
    for i, row in enumerate(iter_jsonl(path), 1):
        if field not in row:
            raise DataError(f"{path}: record {i} has no field '{field}'")
        if row[field]:
            yield row[field]


def read_jsonl_text(path: str | Path, field: str = "text") -> list[str]:
    """All documents of :func:`iter_jsonl_text`, for the test sets (which are small)."""
    return list(iter_jsonl_text(path, field))


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
    if not Path(path).is_file():
        raise DataError(f"{path}: no such file")
    count = 0
    for doc in READERS[fmt](path, **options):
        count += 1
        yield doc
    if not count:
        raise DataError(f"{path}: no documents read as format '{fmt}'")
