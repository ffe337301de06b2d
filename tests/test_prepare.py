"""Document-level splits, training streams and tokenised candidates."""

import numpy as np
import pandas as pd
import pytest

from proxyscale.data import prepare
from proxyscale.data.testsets import Candidate
from proxyscale.data.tokenizer import ByteTokenizer, make_tokenizer
from proxyscale.errors import ConfigError


def test_split_is_disjoint_deterministic_and_order_free():
    docs = [f"document {i}" for i in range(2000)]
    train, holdout = prepare.split_documents(docs, 0.1)
    assert set(train).isdisjoint(holdout) and len(train) + len(holdout) == 2000
    assert 140 < len(holdout) < 260
    train2, holdout2 = prepare.split_documents(docs[::-1], 0.1)
    assert sorted(holdout2) == sorted(holdout)
    # an exact duplicate of a holdout document is never trained on
    dup_train, _ = prepare.split_documents(docs + [holdout[0]], 0.1)
    assert holdout[0] not in dup_train


def test_a_document_in_two_sources_is_held_out_of_both_or_neither():
    shared = [f"shared document {i}" for i in range(500)]
    web = shared + [f"web page {i}" for i in range(300)]
    books = [f"book chapter {i}" for i in range(200)] + shared[::-1]
    web_train, web_holdout = prepare.split_documents(web, 0.2)
    books_train, books_holdout = prepare.split_documents(books, 0.2)
    held = [d for d in shared if d in web_holdout]
    assert 50 < len(held) < 150  # some shared documents are held out, so the check below means something
    assert set(held) == {d for d in shared if d in books_holdout}
    assert set(web_train).isdisjoint(books_holdout) and set(books_train).isdisjoint(web_holdout)


def test_token_stream_separates_documents():
    tok = ByteTokenizer()
    stream = prepare.token_stream(["ab", "é"], tok)
    assert stream.dtype == np.uint16
    assert stream.tolist() == [97, 98, 256, 0xC3, 0xA9, 256]


def test_interleave_takes_turns():
    out = prepare.interleave({"a": ["a1", "a2", "a3"], "b": ["b1"]}, seed=0)
    assert sorted(out) == ["a1", "a2", "a3", "b1"] and set(out[:2]) & {"b1"}


def test_tokenise_candidates_empty_context_is_eos():
    frame = prepare.tokenise_candidates([Candidate(0, "", "hi"), Candidate(1, "q", " a")], "sequence", ByteTokenizer())
    assert frame["context_ids"][0].tolist() == [256]
    assert frame["continuation_ids"][1].tolist() == [32, 97]


def test_pile_needs_holdouts_and_unknown_formats_fail():
    with pytest.raises(ConfigError, match="pile"):
        prepare.test_candidates({"format": "pile"}, {}, 100)
    with pytest.raises(ConfigError, match="not one of"):
        prepare.test_candidates({"format": "mmlu", "path": "x"}, {}, 100)


def test_tokenizer_config_errors():
    with pytest.raises(ConfigError, match="tokenizer.kind 'bpe' is trained by the workflow"):
        make_tokenizer({"kind": "bpe"})
    with pytest.raises(ConfigError, match="tokenizer.kind 'hf' needs tokenizer.path"):
        make_tokenizer({"kind": "hf"})
    with pytest.raises(ConfigError, match="tokenizer.kind 'sentencepiece' is not one of"):
        make_tokenizer({"kind": "sentencepiece"})


def test_streamed_preparation_equals_tokenising_everything_at_once(tmp_path):
    docs = [f"document {i}: " + "word " * (i % 7) for i in range(300)]
    tok = ByteTokenizer()
    shard, holdout = tmp_path / "shard.npy", tmp_path / "holdout.parquet"
    stats = prepare.prepare_source(iter(docs), tok, 0.2, shard, holdout, batch_docs=16)
    train, held = prepare.split_documents(docs, 0.2)
    stream = np.load(shard, mmap_mode="r")
    assert isinstance(stream, np.memmap) and stream.dtype == np.uint16
    assert np.array_equal(stream, prepare.token_stream(train, tok))
    assert pd.read_parquet(holdout)["text"].tolist() == held
    assert stats == {
        "documents": 300,
        "train_documents": len(train),
        "tokens": len(stream),
        "holdout_documents": len(held),
        "characters": sum(map(len, docs)),
    }


def test_a_failed_preparation_leaves_no_files(tmp_path):
    def docs():
        yield "one document"
        raise RuntimeError("the source broke")

    with pytest.raises(RuntimeError, match="the source broke"):
        prepare.prepare_source(docs(), ByteTokenizer(), 0.1, tmp_path / "s.npy", tmp_path / "h.parquet", batch_docs=1)
    assert not list(tmp_path.iterdir())
