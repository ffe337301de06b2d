"""Every reader x every kind of damage: one line naming the file and what is wrong with it.

Damaged files are made here from the embedded data (recompressed, cut, corrupted, re-encoded, emptied),
so each case starts from a file the reader accepts and differs from it by one kind of damage.
"""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import pickle
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import REPO, needs_datasets, run_snakemake, tiny_config, write_config
from proxyscale import artifacts
from proxyscale.data import files, hf, images, readers, testsets
from proxyscale.errors import DataError
from proxyscale.io import save_npz, save_parquet
from proxyscale.layout import maker_of
from proxyscale.training.checkpoints import read_checkpoint, save_checkpoint

DATA = REPO / "data"
COMPRESS = {".xz": lambda b: lzma.compress(b, preset=0), ".gz": gzip.compress, ".bz2": bz2.compress}
DECOMPRESS = {".xz": lzma.decompress, ".gz": gzip.decompress, ".bz2": bz2.decompress}


def _documents(fmt: str) -> Callable[[Path], list]:
    return lambda path: list(readers.read_documents(path, fmt))


# reader -> (embedded file, how the reader reads a path, content with the fields it needs missing)
TEXT_READERS: dict[str, tuple[str, Callable[[Path], list], bytes]] = {
    "plain_text": ("train/books_tinyshakespeare.txt.xz", _documents("plain_text"), b"\n\n  \n"),
    "gutenberg": ("train/books_pg1661_sherlock_holmes.txt.xz", _documents("gutenberg"), b"a book\n\nno licence\n"),
    "wikitext": ("train/wiki_wikitext2_raw_test.txt.xz", _documents("wikitext"), b"no headings here\n"),
    "arxiv_csv": ("train/arxiv_metadata_2000.csv.xz", _documents("arxiv_csv"), b"id,title\n1,a title\n"),
    "s2orc_jsonl": ("train/s2orc_fulltext_sample.jsonl.xz", _documents("s2orc_jsonl"), b'{"id": 1}\n'),
    "jsonl": ("train/web_openwebtext_1000.jsonl.xz", _documents("jsonl"), b'{"body": "a document"}\n'),
    "squad": ("test/squad_v1.1_dev_part_a.json.xz", testsets.squad_candidates, b'{"data": [{"title": "t"}]}'),
    "lambada": ("test/lambada_openai_test.jsonl.xz", testsets.lambada_candidates, b'{"passage": "a b"}\n'),
    "hellaswag": ("test/hellaswag_val_2000.txt.bz2", testsets.hellaswag_candidates, b"ctx\n7\na\nb\nc\nd\n"),
    "triviaqa": ("test/triviaqa_rc_2000.jsonl.xz", testsets.triviaqa_candidates, b'{"question": "q?"}\n'),
}


def _plain(entry: str) -> tuple[bytes, str]:
    """The embedded file's decompressed bytes and its name without the compression suffix."""
    path = DATA / entry
    return DECOMPRESS[path.suffix](path.read_bytes()), path.with_suffix("").name


def _cut(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _corrupt(data: bytes) -> bytes:
    at = len(data) // 3
    return data[:at] + bytes(b ^ 0x5A for b in data[at : at + 256]) + data[at + 256 :]


def _not_utf8(text: bytes) -> bytes:
    at = text.index(b"e", 200)  # an accented letter in Latin-1, inside the text
    return text[:at] + b"\xe9" + text[at + 1 :]


FIELDS_MISSING = "lacks|has no field|no documents|not one of|no .* (markers|headings)"

# damage -> (how to make the damaged file from (plain bytes, plain name, missing-fields bytes, directory), what the
# message must say)
DAMAGES: dict[str, tuple[Callable[[bytes, str, bytes, Path], Path], str]] = {
    "missing": (lambda t, n, m, d: d / n, "no such file"),
    "directory": (lambda t, n, m, d: _mkdir(d / n), "is a directory"),
    "empty": (lambda t, n, m, d: _write(d / n, b""), r"empty file \(0 bytes\)"),
    "xz cut off": (lambda t, n, m, d: _write(d / f"{n}.xz", _cut(COMPRESS[".xz"](t))), "xz data ends early"),
    "gz cut off": (lambda t, n, m, d: _write(d / f"{n}.gz", _cut(COMPRESS[".gz"](t))), "gzip data ends early"),
    "bz2 cut off": (lambda t, n, m, d: _write(d / f"{n}.bz2", _cut(COMPRESS[".bz2"](t))), "bzip2 data ends early"),
    "xz corrupt": (lambda t, n, m, d: _write(d / f"{n}.xz", _corrupt(COMPRESS[".xz"](t))), "xz data is corrupt"),
    "gz corrupt": (lambda t, n, m, d: _write(d / f"{n}.gz", _corrupt(COMPRESS[".gz"](t))), "gzip data is corrupt"),
    "bz2 corrupt": (lambda t, n, m, d: _write(d / f"{n}.bz2", _corrupt(COMPRESS[".bz2"](t))), "bzip2 data is corrupt"),
    "not xz": (lambda t, n, m, d: _write(d / f"{n}.xz", t), r"named \.xz but is not xz-compressed .*plain text"),
    "gz under a plain name": (lambda t, n, m, d: _write(d / n, COMPRESS[".gz"](t)), "is gzip-compressed data but"),
    "not UTF-8": (lambda t, n, m, d: _write(d / n, _not_utf8(t)), r":\d+: not utf-8 text \(byte 0xe9 at byte offset"),
    "fields missing": (lambda t, n, m, d: _write(d / n, m), FIELDS_MISSING),
}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def _assert_one_line_naming(exc: pytest.ExceptionInfo, path: Path, says: str) -> None:
    message = str(exc.value)
    assert "\n" not in message and message.startswith(f"{path}"), message
    assert re.search(says, message), message


@pytest.fixture(scope="module")
def plain_texts() -> dict[str, tuple[bytes, str]]:
    return {reader: _plain(entry) for reader, (entry, _, _) in TEXT_READERS.items()}


@pytest.mark.parametrize("damage", DAMAGES)
@pytest.mark.parametrize("reader", TEXT_READERS)
def test_every_text_reader_names_the_file_and_the_damage(reader, damage, plain_texts, tmp_path):
    text, name = plain_texts[reader]
    make, says = DAMAGES[damage]
    path = make(text, name, TEXT_READERS[reader][2], tmp_path)
    with pytest.raises(DataError) as exc:
        TEXT_READERS[reader][1](path)
    _assert_one_line_naming(exc, path, says)


def test_the_undamaged_files_read(plain_texts, tmp_path):
    """The control: every reader accepts its file recompressed in each format and uncompressed."""
    for reader, (text, name) in plain_texts.items():
        for suffix, compress in [*COMPRESS.items(), ("", lambda b: b)]:
            assert len(TEXT_READERS[reader][1](_write(tmp_path / f"{name}{suffix}", compress(text)))) > 0, reader


def test_a_non_utf8_byte_is_reported_at_its_line_and_an_entry_may_choose_another_encoding(tmp_path):
    path = _write(tmp_path / "docs.jsonl.gz", gzip.compress(b'{"text": "one"}\n{"text": "two"}\n{"text": "caf\xe9"}\n'))
    with pytest.raises(DataError, match=r"docs.jsonl.gz:3: not utf-8 text \(byte 0xe9 at byte offset 45\)"):
        list(readers.read_documents(path, "jsonl"))
    assert list(readers.read_documents(path, "jsonl", encoding="latin-1"))[-1] == "café"
    assert list(readers.read_documents(path, "jsonl", decode_errors="replace"))[-1] == "caf\ufffd"
    with pytest.raises(DataError, match="encoding 'klingon' is not a codec"):
        list(readers.read_documents(path, "jsonl", encoding="klingon"))


def test_an_unreadable_file_says_so(monkeypatch, tmp_path):
    """Permissions cannot be taken from root, so the refusal is faked where the file is opened."""
    path = _write(tmp_path / "docs.jsonl", b'{"text": "a"}\n')

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(files, "open", refuse, raising=False)
    with pytest.raises(DataError, match=r"docs.jsonl: cannot be read \(Permission denied\)"):
        list(readers.read_documents(path, "jsonl"))


# --- MNIST IDX files and CIFAR-10 batches


@pytest.fixture(scope="module")
def idx_bytes() -> bytes:
    return gzip.decompress((DATA / "vision/t10k-labels-idx1-ubyte.gz").read_bytes())


IDX_DAMAGES: dict[str, tuple[Callable[[bytes], bytes], str, str]] = {
    "gz cut off": (lambda b: _cut(gzip.compress(b)), ".gz", "gzip data ends early"),
    "gz corrupt": (lambda b: _corrupt(gzip.compress(b)), ".gz", "gzip data is corrupt"),
    "not gzip": (lambda b: b, ".gz", r"named \.gz but is not gzip-compressed"),
    "empty": (lambda b: b"", "", "empty file"),
    "wrong magic number": (lambda b: b"\x01\x02" + b[2:], "", "not an IDX file \\(bad magic number"),
    "data cut off": (lambda b: b[:-100], "", "IDX header promises .* \\(cut off\\)"),
    "header cut off": (lambda b: b[:6], "", "IDX header is cut off"),
}


@pytest.mark.parametrize("damage", IDX_DAMAGES)
def test_mnist_idx_damage_is_one_line_naming_the_file(damage, idx_bytes, tmp_path):
    make, suffix, says = IDX_DAMAGES[damage]
    path = _write(tmp_path / f"labels-idx1-ubyte{suffix}", make(idx_bytes))
    with pytest.raises(DataError) as exc:
        images.read_idx(path)
    _assert_one_line_naming(exc, path, says)


CIFAR_DAMAGES: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "cut off": (_cut, "not a CIFAR-10 python batch"),
    "empty": (lambda b: b"", "empty file"),
    "foreign bytes": (lambda b: b"these are not pickled batches" * 10, "not a CIFAR-10 python batch"),
    "fields missing": (lambda b: pickle.dumps({"labels": [1]}), "not a CIFAR-10 python batch .*KeyError"),
    "gzip inside": (gzip.compress, "is gzip-compressed data but its name has no .gz ending"),
}


@pytest.mark.parametrize("damage", CIFAR_DAMAGES)
def test_cifar_batch_damage_is_one_line_naming_the_file(damage, tmp_path):
    x, y = images.load_mnist(DATA / "vision/t10k-images-idx3-ubyte.gz", DATA / "vision/t10k-labels-idx1-ubyte.gz")
    cifar = np.repeat(np.pad(x[:50], ((0, 0), (0, 0), (2, 2), (2, 2))), 3, axis=1)
    images.write_cifar10(tmp_path, {"test": (cifar, y[:50])})
    assert len(images.load_cifar10(tmp_path, train=False)[0]) == 50
    path = tmp_path / "cifar-10-batches-py/test_batch"
    make, says = CIFAR_DAMAGES[damage]
    path.write_bytes(make(path.read_bytes()))
    with pytest.raises(DataError) as exc:
        images.load_cifar10(tmp_path, train=False)
    _assert_one_line_naming(exc, path, says)


# --- Hugging Face records (local files in the hub datasets' schemas)

HF_DAMAGES: dict[str, tuple[Callable[[bytes], bytes], str, str]] = {
    "gz cut off": (lambda b: _cut(gzip.compress(b)), ".jsonl.gz", "ends early: a file is cut off"),
    "record cut off": (lambda b: b + b'{"context": "c", "ques', ".jsonl", "cannot be read as dataset 'json'"),
    "fields missing": (lambda b: b'{"title": "t"}\n', ".jsonl", "record has no field"),
}


@pytest.mark.parametrize("damage", HF_DAMAGES)
def test_hugging_face_record_damage_is_one_line_naming_the_file(damage, tmp_path):
    needs_datasets()
    rows = [{"context": f"passage {i}", "question": "q?", "answers": {"text": ["a"]}} for i in range(200)]
    good = "".join(json.dumps(r) + "\n" for r in rows).encode()
    make, suffix, says = HF_DAMAGES[damage]
    path = _write(tmp_path / f"squad{suffix}", make(good))
    with pytest.raises(DataError) as exc:
        spec = {"dataset": "json", "data_files": str(path)}
        hf.squad_candidates(hf.load_records(spec), hf.describe(spec))
    _assert_one_line_naming(exc, path, says)


# --- the workflow's own artifacts, damaged by hand after they were written


def _artifacts(results: Path) -> dict[str, tuple[Path, Callable[[Path], object], str]]:
    """One artifact of each file type at its place in the layout: path, how the jobs read it, its maker."""
    save_parquet(pd.DataFrame({"text": ["a", "b"]}), results / "holdout/web.parquet")
    (results / "shards").mkdir(parents=True)
    np.save(results / "shards/web.npy", np.arange(1000, dtype=np.uint16))
    save_npz(results / "attribution/lds_subsets/0.npz", mask=np.ones(40, dtype=bool), outputs=np.ones(5))
    save_checkpoint(results / "attribution/models/w8/0.pt", torch.nn.Linear(30, 20), {"params": 620})
    store = results / "attribution/trak/w8/0/proxyscale.json"
    store.parent.mkdir(parents=True)
    store.write_text(json.dumps({"projector_choice": "sjlt"}))
    return {
        "parquet": (results / "holdout/web.parquet", artifacts.load_parquet, "prepare_source"),
        "npy": (results / "shards/web.npy", lambda p: artifacts.load_npy(p, mmap=True), "prepare_source"),
        "npz": (results / "attribution/lds_subsets/0.npz", artifacts.load_npz, "lds_subset"),
        "pt": (results / "attribution/models/w8/0.pt", read_checkpoint, "datamodel_train"),
        "json": (store, artifacts.load_json, "trak"),
    }


ARTIFACT_DAMAGES: dict[str, Callable[[bytes], bytes]] = {
    "cut off": _cut,
    "empty": lambda b: b"",
    "foreign bytes": lambda b: b"a file copied over the artifact\n" * 40,
}


@pytest.mark.parametrize("damage", ARTIFACT_DAMAGES)
@pytest.mark.parametrize("kind", ["parquet", "npy", "npz", "pt", "json"])
def test_a_damaged_artifact_names_the_file_its_rule_and_what_to_do(kind, damage, tmp_path):
    path, read, maker = _artifacts(tmp_path / "results")[kind]
    read(path)  # the undamaged artifact reads
    path.write_bytes(ARTIFACT_DAMAGES[damage](path.read_bytes()))
    with pytest.raises(DataError) as exc:
        read(path)
    _assert_one_line_naming(exc, path, f"damaged or incomplete .*made by rule {maker}: delete it and run again")


# --- in the workflow: the console line, nothing half-written, the other jobs go on; every maker named right


def _planned_outputs(output: str) -> list[tuple[str, str]]:
    """(rule, output path) of every job a dry run plans."""
    pairs, rule = [], None
    for line in output.splitlines():
        if m := re.match(r"(?:local)?rule (\w+):", line):
            rule = m[1]
        elif rule and (m := re.match(r"\s+output: (.*)", line)):
            pairs += [(rule, path) for path in m[1].split(", ")]
    return pairs


@pytest.mark.workflow
def test_the_layout_names_the_rule_that_makes_every_planned_output(tmp_path):
    config = tiny_config()
    config["tokenizer"] = {"kind": "bpe", "vocab_size": 300}  # plans train_tokenizer too
    write_config(config, tmp_path)
    result = run_snakemake(tmp_path, "-n", "--forceall", "all")
    assert result.returncode == 0, result.stderr
    pairs = _planned_outputs(result.stdout)
    rules = {rule for rule, _ in pairs}
    assert {"train_tokenizer", "prepare_source", "trak", "lds", "dsdm", "selection_shard", "attribution_data"} <= rules
    assert [(rule, path) for rule, path in pairs if maker_of(path) != rule] == []


@pytest.mark.workflow
def test_a_damaged_input_fails_its_job_in_one_line_and_keep_going_finishes_the_others(tmp_path):
    config = tiny_config()
    web = Path(config["sources"]["web"][0]["path"])
    bad = _write(tmp_path / "web.jsonl.xz", _cut(web.read_bytes()))
    config["sources"]["web"][0]["path"] = str(bad)
    write_config(config, tmp_path)
    shards = [f"results/shards/{s}.npy" for s in ("books", "web", "wiki")]
    result = run_snakemake(tmp_path, "--cores", "1", "--keep-going", *shards)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    line = f"error in rule prepare_source: {bad}: xz data ends early (the file is cut off)"
    assert line in result.stderr
    log = (tmp_path / "results/logs/prepare_source/web.log").read_text()
    assert log.splitlines()[-1].startswith(line) and "Traceback" not in log  # on a line of its own
    assert (tmp_path / shards[0]).is_file() and (tmp_path / shards[2]).is_file()
    assert not (tmp_path / shards[1]).exists() and not (tmp_path / "results/holdout/web.parquet").exists()
    assert not [p for p in (tmp_path / "results").rglob("*") if ".tmp" in p.name]  # nothing half-written
    failed = result.stderr.split("1 job(s) failed:\n", 1)[1].splitlines()  # by rule and wildcards, line, log
    assert failed[0].startswith(f"  prepare_source (source=web): {bad}: xz data ends early (the file is cut off)")
    assert failed[1] == "    log: results/logs/prepare_source/web.log"

    # a finished artifact damaged by hand: its reader names it and its maker; deleting it is the remedy
    books = tmp_path / shards[0]
    books.write_bytes(_cut(books.read_bytes()))
    result = run_snakemake(tmp_path, "--cores", "1", "results/checkpoints/books/tiny.pt")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert re.search(
        r"error in rule train: results/shards/books.npy: damaged or incomplete \(.*\); it is made by rule "
        r"prepare_source: delete it and run again to rebuild it",
        result.stderr,
    ), result.stderr
    books.unlink()
    result = run_snakemake(tmp_path, "--cores", "1", "results/checkpoints/books/tiny.pt")
    assert result.returncode == 0, result.stderr
