"""Format readers: the shipped samples, and small files written in each format."""

import bz2
import gzip
import json
import lzma

import pytest

from conftest import DATA
from proxyscale.data import readers
from proxyscale.errors import DataError


@pytest.mark.parametrize(
    "name, fmt, at_least",
    [
        ("train/books_tinyshakespeare.txt.xz", "plain_text", 300),
        ("train/books_pg1342_pride_and_prejudice.txt.xz", "gutenberg", 200),
        ("train/wiki_wikitext2_raw_test.txt.xz", "wikitext", 50),
        ("train/arxiv_metadata_2000.csv.xz", "arxiv_csv", 1900),
        ("train/s2orc_metadata_sample.jsonl.xz", "s2orc_jsonl", 100),
        ("train/s2orc_fulltext_sample.jsonl.xz", "s2orc_jsonl", 8),
        ("train/markdown_github_readmes.jsonl.xz", "jsonl", 140),
        ("train/web_openwebtext_1000.jsonl.xz", "jsonl", 1000),
        ("test/c4_en_1000.jsonl.xz", "jsonl", 1000),
    ],
)
def test_shipped_samples_read(name, fmt, at_least):
    docs = list(readers.read_documents(DATA / name, fmt))
    assert len(docs) >= at_least
    assert all(isinstance(d, str) and d.strip() for d in docs)
    assert not any("\r" in d for d in docs if fmt in ("plain_text", "gutenberg", "wikitext"))


@pytest.mark.parametrize("suffix, opener", [(".gz", gzip.open), (".bz2", bz2.open), (".xz", lzma.open), ("", open)])
def test_compressions_and_bom(tmp_path, suffix, opener):
    path = tmp_path / f"doc.txt{suffix}"
    with opener(path, "wt", encoding="utf-8") as f:
        f.write("\ufeffone\r\ntwo\r\n\r\nthree\r\n")
    assert readers.read_text(path) == "one\ntwo\n\nthree\n"
    assert readers.read_plain_text(path, chunk_chars=1) == ["one\ntwo", "three"]


def test_gutenberg_licence_stripped(tmp_path):
    path = tmp_path / "book.txt"
    path.write_text(
        "The Project Gutenberg eBook\nLICENCE HEADER\n*** START OF THE PROJECT GUTENBERG EBOOK X ***\n"
        "Chapter 1\n\nIt was a dark night.\n\n   *** END OF THE PROJECT GUTENBERG EBOOK X ***\nLICENCE FOOTER\n"
    )
    docs = readers.read_gutenberg(path, chunk_chars=10_000)
    assert docs == ["Chapter 1\n\nIt was a dark night."]
    text = "\n".join(readers.read_gutenberg(DATA / "train/books_pg1661_sherlock_holmes.txt.xz"))
    assert "Project Gutenberg" not in text and "Sherlock" in text


def test_gutenberg_without_markers_is_a_clear_error(tmp_path):
    path = tmp_path / "plain.txt"
    path.write_text("no markers here")
    with pytest.raises(DataError, match="plain.txt: not a Project Gutenberg text"):
        readers.read_gutenberg(path)


def test_wikitext_splits_articles_not_sections(tmp_path):
    path = tmp_path / "wiki.raw"
    path.write_text(" = A = \n text a \n = = Section = = \n more a \n = B = \n text b \n")
    docs = readers.read_wikitext(path)
    assert len(docs) == 2 and "Section" in docs[0] and docs[1].startswith("= B =")


def test_arxiv_csv_joins_title_and_abstract(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text('id,title,abstract\n1,"A\n  title","  line one\nline two"\n2,empty,\n')
    assert list(readers.iter_arxiv_csv(path)) == ["A title\n\nline one line two"]
    bad = tmp_path / "b.csv"
    bad.write_text("id,title\n1,x\n")
    with pytest.raises(DataError, match="lacks column"):
        list(readers.iter_arxiv_csv(bad))


def test_s2orc_full_text_then_abstract(tmp_path):
    path = tmp_path / "s.jsonl"
    rows = [
        {"content": {"text": "\nFull paper\n"}},
        {"title": "T", "abstract": "An abstract."},
        {"title": "No abstract", "abstract": None},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    assert list(readers.iter_s2orc_jsonl(path)) == ["Full paper", "T\n\nAn abstract."]


def test_jsonl_errors_name_file_and_record(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"text": "a"}\n{"body": "b"}\n')
    with pytest.raises(DataError, match="record 2 has no field 'text'"):
        readers.read_jsonl_text(path)
    path.write_text('{"text": "a"}\nnot json\n')
    with pytest.raises(DataError, match="x.jsonl:2: not valid JSON"):
        readers.read_jsonl_text(path)


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        list(readers.read_documents(tmp_path / "nope.jsonl", "jsonl"))
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(DataError, match="unknown format 'pdf'"):
        list(readers.read_documents(tmp_path / "f.txt", "pdf"))
    (tmp_path / "empty.jsonl").write_text('{"text": ""}\n')
    with pytest.raises(DataError, match="no documents read as format 'jsonl'"):
        list(readers.read_documents(tmp_path / "empty.jsonl", "jsonl"))
