"""Small local samples in the exact formats the paper-scale presets read from the hub, made from the
embedded data, so that the presets' whole graph runs here without network (``configs/smoke/``).

- Training sources as JSON lines in the schemas of the Hugging Face datasets the LM preset streams:
  RedPajama-Data-1T subsets (``text``, ``meta``, ``red_pajama_subset``), allenai/peS2o (``id``,
  ``source``, ``text``, ...) and allenai/c4 (``text``, ``timestamp``, ``url``).
- Test sets in the schemas of rajpurkar/squad, EleutherAI/lambada_openai, Rowan/hellaswag,
  mandarjoshi/trivia_qa (rc.nocontext), allenai/c4 and monology/pile-uncopyrighted, some as JSON
  lines and some as parquet (the two local formats ``datasets`` reads), each under the split name the
  preset asks for.
- CIFAR-10 python batches made of the embedded MNIST digits, padded to 32x32 and repeated over three
  channels (:func:`mnist_as_cifar`), for the vision preset's ResNet-18 family.

Everything is deterministic: the same embedded files give the same samples.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from itertools import islice
from pathlib import Path

import numpy as np
import pandas as pd

from proxyscale.data.files import open_text
from proxyscale.data.images import load_mnist, write_cifar10
from proxyscale.data.readers import iter_jsonl, read_documents
from proxyscale.data.testsets import canonical_alias
from proxyscale.io import atomic_path, save_parquet

# source name -> (embedded files and their formats, RedPajama subset or None for peS2o and C4)
SOURCES = {
    "books": ([("train/books_pg1342_pride_and_prejudice.txt.xz", "gutenberg")], "book"),
    "wiki": ([("train/wiki_wikitext2_raw_test.txt.xz", "wikitext")], "wikipedia"),
    "arxiv": ([("train/arxiv_metadata_2000.csv.xz", "arxiv_csv")], "arxiv"),
    "s2orc": ([("train/s2orc_metadata_sample.jsonl.xz", "s2orc_jsonl")], None),  # peS2o
    "markdown": ([("train/markdown_github_readmes.jsonl.xz", "jsonl")], "github"),
    "web": ([("train/web_openwebtext_1000.jsonl.xz", "jsonl")], "common_crawl"),
    "c4": ([("test/c4_en_1000.jsonl.xz", "jsonl")], None),  # allenai/c4 train
}


def write_jsonl(rows: Iterable[dict], path: Path) -> None:
    """Rows as gzip-compressed JSON lines (``datasets``' json builder reads ``.jsonl.gz``), atomically."""
    with atomic_path(path) as tmp, gzip.open(tmp, "wt", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def source_rows(name: str, docs: list[str]) -> list[dict]:
    """Documents as records of the dataset the LM preset streams for source ``name``."""
    _, subset = SOURCES[name]
    if name == "s2orc":
        return [{"id": str(i), "source": "s2orc/2023_01_03", "version": "v3", "text": d} for i, d in enumerate(docs)]
    if name == "c4":
        return [
            {"text": d, "timestamp": "2019-04-25T12:57:54Z", "url": f"https://example.org/{i}"}
            for i, d in enumerate(docs)
        ]
    return [{"text": d, "meta": json.dumps({"source": "sample"}), "red_pajama_subset": subset} for d in docs]


def squad_rows(path: Path, limit: int) -> list[dict]:
    """SQuAD v1.1 JSON as rajpurkar/squad records (``answers`` holds lists)."""
    with open_text(path) as f:
        articles = json.load(f)["data"]
    rows = [
        {
            "id": qa["id"],
            "title": article["title"],
            "context": para["context"],
            "question": qa["question"],
            "answers": {
                "text": [a["text"] for a in qa["answers"]],
                "answer_start": [a["answer_start"] for a in qa["answers"]],
            },
        }
        for article in articles
        for para in article["paragraphs"]
        for qa in para["qas"]
    ]
    return rows[:limit]


def hellaswag_rows(path: Path, limit: int) -> list[dict]:
    """The 6-line HellaSwag items as Rowan/hellaswag records (the label is a string, as on the hub)."""
    with open_text(path) as f:
        lines = [line.rstrip("\r\n") for line in islice(f, 6 * limit)]
    rows = []
    for i in range(0, len(lines) - 5, 6):
        activity, _, ctx = lines[i].partition(": ")
        rows.append(
            {
                "ind": i // 6,
                "activity_label": activity,
                "ctx_a": ctx,
                "ctx_b": "",
                "ctx": ctx,
                "endings": lines[i + 2 : i + 6],
                "source_id": f"sample~{i // 6}",
                "split": "val",
                "split_type": "indomain",
                "label": lines[i + 1].strip(),
            }
        )
    return rows


def triviaqa_rows(path: Path, limit: int) -> list[dict]:
    """TriviaQA records as mandarjoshi/trivia_qa (rc.nocontext): ``answer.value`` and its aliases."""
    rows = []
    for i, row in enumerate(islice(iter_jsonl(path), limit)):
        value = canonical_alias(row["answer"])
        rows.append(
            {
                "question": row["turns"][0],
                "question_id": f"sample_{i}",
                "question_source": "http://www.triviaquiz.com/",
                "answer": {
                    "aliases": row["answer"],
                    "normalized_aliases": [a.lower() for a in row["answer"]],
                    "value": value,
                    "normalized_value": value.lower(),
                    "type": "WikipediaEntity",
                },
            }
        )
    return rows


def mnist_as_cifar(images: np.ndarray) -> np.ndarray:
    """(n, 1, 28, 28) digits as (n, 3, 32, 32) images: zero-padded by 2 pixels, repeated over RGB."""
    padded = np.pad(images, ((0, 0), (0, 0), (2, 2), (2, 2)))
    return np.repeat(padded, 3, axis=1)


def write_cifar10_sample(data: Path, root: Path, n_train: int, n_test: int) -> None:
    """A CIFAR-10-format sample under ``root`` made of the first embedded MNIST digits."""
    x, y = load_mnist(data / "vision/t10k-images-idx3-ubyte.gz", data / "vision/t10k-labels-idx1-ubyte.gz")
    x = mnist_as_cifar(x[: n_train + n_test])
    write_cifar10(root, {"train": (x[:n_train], y[:n_train]), "test": (x[n_train:], y[n_train : n_train + n_test])})


def write_samples(data: Path, out: Path, documents: int = 300, records: int = 300, images: int = 1200) -> None:
    """Every sample the smoke overlays read, under ``out``: ``documents`` per source, ``records`` per test
    set, ``images`` CIFAR-10-format training images (and a quarter as many test images)."""
    pile = []
    for name, (files, _) in SOURCES.items():
        docs = [d for path, fmt in files for d in read_documents(data / path, fmt)]
        write_jsonl(source_rows(name, docs[:documents]), out / f"sources/{name}.jsonl.gz")
        if name != "c4":
            pile += [{"text": d, "meta": {"pile_set_name": name}} for d in docs[documents : documents + 40]]
    tests = data / "test"
    c4 = [r for r in islice(iter_jsonl(tests / "c4_en_1000.jsonl.xz"), documents, documents + records)]
    write_jsonl(c4, out / "tests/c4_validation.jsonl.gz")
    write_jsonl(pile, out / "tests/pile_test.jsonl.gz")
    save_parquet(
        pd.DataFrame(squad_rows(tests / "squad_v1.1_dev_part_a.json.xz", records)),
        out / "tests/squad_validation.parquet",
    )
    lambada = [
        {"text": t} for t in islice((r["text"] for r in iter_jsonl(tests / "lambada_openai_test.jsonl.xz")), records)
    ]
    write_jsonl(lambada, out / "tests/lambada_test.jsonl.gz")
    save_parquet(
        pd.DataFrame(hellaswag_rows(tests / "hellaswag_val_2000.txt.bz2", records)),
        out / "tests/hellaswag_validation.parquet",
    )
    write_jsonl(triviaqa_rows(tests / "triviaqa_rc_2000.jsonl.xz", records), out / "tests/triviaqa_validation.jsonl.gz")
    write_cifar10_sample(data, out / "cifar10", images, images // 4)
