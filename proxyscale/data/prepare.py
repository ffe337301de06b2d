"""From raw files to training token streams and tokenised test sets.

- Sources: each source's documents are split at the document level into train and holdout parts by a
  hash of the document text, so the split is deterministic, independent of file order, and no
  holdout document (nor an exact duplicate of one) is ever in a training stream.
- Training streams ("shards"): a source's train documents tokenised and concatenated, each followed by
  the end-of-sequence token. Preparation streams (:func:`prepare_source`): documents are read, split,
  batch-tokenised and appended to the shard a batch at a time, so a source of hundreds of GB needs
  the memory of one batch; training reads the shard memory-mapped.
- Test sets: candidates (see :mod:`proxyscale.data.testsets`) with tokenised context and continuation.
  The Pile-like test set is a held-out mixture: documents drawn in turn from every source's holdout.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Iterator
from itertools import islice

import numpy as np
import pandas as pd
from tqdm import tqdm

from proxyscale.data import hf, testsets
from proxyscale.data.readers import read_documents, read_jsonl_text
from proxyscale.data.tokenizer import batched, token_dtype
from proxyscale.errors import ConfigError
from proxyscale.io import npy_writer, parquet_writer


def is_holdout(doc: str, fraction: float) -> bool:
    """Whether ``doc`` belongs to the holdout part: a stable hash of its text alone, below ``fraction``.

    No per-source salt: a document present in two sources is held out of both or trained on in both,
    so a test document can never reach training through another source.
    """
    digest = hashlib.sha256(doc.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def split_documents(docs: list[str], fraction: float) -> tuple[list[str], list[str]]:
    """``(train, holdout)`` document lists; every document lands in exactly one."""
    train, holdout = [], []
    for doc in docs:
        (holdout if is_holdout(doc, fraction) else train).append(doc)
    return train, holdout


def iter_source(files: list[dict]) -> Iterator[str]:
    """Documents of a source, given its file entries ``{path, format, **reader options}``, as they are read."""
    for entry in files:
        if entry["format"] == "hf":
            yield from hf.iter_documents(entry)
            continue
        options = {k: v for k, v in entry.items() if k not in ("path", "format")}
        yield from read_documents(entry["path"], entry["format"], **options)


def train_documents(files: list[dict], fraction: float, limit: int | None = None) -> Iterator[str]:
    """The train documents of a source (holdout documents skipped), at most ``limit``: what a tokenizer
    may be trained on."""
    train = (doc for doc in iter_source(files) if not is_holdout(doc, fraction))
    return islice(train, limit)


def token_stream(docs: list[str], tokenizer) -> np.ndarray:
    """Documents tokenised (one batch call) and concatenated, each followed by the end-of-sequence token."""
    dtype = token_dtype(tokenizer.vocab_size)
    eos = np.asarray([tokenizer.eos_id], dtype=dtype)
    parts = []
    for ids in tokenizer.encode_batch(list(docs)):
        parts += [np.asarray(ids, dtype=dtype), eos]
    return np.concatenate(parts) if parts else np.empty(0, dtype=dtype)


def prepare_source(
    docs: Iterable[str], tokenizer, fraction: float, shard: str, holdout: str, batch_docs: int = 1024, desc: str = ""
) -> dict:
    """Stream a source's documents into its train token shard (``.npy``, written incrementally) and its
    holdout documents (parquet, written in row groups), a batch of ``batch_docs`` documents at a time.

    Memory stays bounded by one batch whatever the source's size; both files appear whole or not at all.
    Returns counts: documents, train documents, tokens, holdout documents, characters.
    """
    stats = dict.fromkeys(("documents", "train_documents", "tokens", "holdout_documents", "characters"), 0)
    dtype = token_dtype(tokenizer.vocab_size)
    progress = tqdm(desc=desc or "documents", unit="doc", mininterval=5, ascii=True)
    with npy_writer(shard, dtype) as append, parquet_writer(holdout, {"text": "string"}) as write_rows:
        for batch in batched(docs, batch_docs):
            train, held = split_documents(batch, fraction)
            tokens = token_stream(train, tokenizer)
            append(tokens)
            if held:
                write_rows({"text": held})
            stats["documents"] += len(batch)
            stats["train_documents"] += len(train)
            stats["holdout_documents"] += len(held)
            stats["tokens"] += len(tokens)
            stats["characters"] += sum(map(len, batch))
            progress.update(len(batch))
    progress.close()
    return stats


def interleave(doc_lists: dict[str, list[str]], seed: int) -> list[str]:
    """Documents taken in turn from each list (each list shuffled with ``seed``) until all run out."""
    rng = random.Random(seed)
    queues = {}
    for name in sorted(doc_lists):
        docs = list(doc_lists[name])
        rng.shuffle(docs)
        queues[name] = docs
    out = []
    for i in range(max((len(q) for q in queues.values()), default=0)):
        out.extend(q[i] for q in queues.values() if i < len(q))
    return out


def test_candidates(spec: dict, holdouts: dict[str, list[str]], max_chars: int) -> tuple[list, str]:
    """Candidates and scoring kind of one test-set config entry ``{format, path?, hf?}``."""
    fmt = spec["format"]
    if "hf" in spec:
        return _hf_candidates(fmt, spec["hf"], max_chars)
    text = {k: spec[k] for k in ("encoding", "decode_errors") if k in spec}
    if fmt == "c4":
        return testsets.sequence_candidates(read_jsonl_text(spec["path"], **text), max_chars), "sequence"
    if fmt == "pile":
        if not holdouts:
            raise ConfigError("test set of format 'pile' needs at least one source holdout")
        return testsets.sequence_candidates(interleave(holdouts, seed=0), max_chars), "sequence"
    if fmt not in testsets.FILE_BUILDERS:
        known = ", ".join(["c4", "pile", *testsets.FILE_BUILDERS])
        raise ConfigError(f"test set format '{fmt}' is not one of: {known}")
    build, kind = testsets.FILE_BUILDERS[fmt]
    return build(spec["path"], **text), kind


def _hf_candidates(fmt: str, source: dict, max_chars: int) -> tuple[list, str]:
    """A test set read with Hugging Face ``datasets`` (:mod:`proxyscale.data.hf`)."""
    if fmt == "c4":
        docs = list(hf.iter_documents({**source, "max_documents": source.get("max_records")}))
        return testsets.sequence_candidates(docs, max_chars), "sequence"
    if fmt not in hf.RECORD_BUILDERS:
        raise ConfigError(
            f"test set format '{fmt}' cannot be read from Hugging Face datasets "
            f"(one of: c4, {', '.join(hf.RECORD_BUILDERS)})"
        )
    build, kind = hf.RECORD_BUILDERS[fmt]
    return build(hf.load_records(source, source.get("max_records")), hf.describe(source)), kind


def candidate_ids(tokenizer, context: str, continuation: str) -> tuple[np.ndarray, np.ndarray]:
    """Token ids of a candidate's context and continuation, each encoded alone; an empty context becomes
    the end-of-sequence token (the start a model is scored from)."""
    context_ids = tokenizer.encode(context) if context else [tokenizer.eos_id]
    return np.asarray(context_ids, dtype=np.int64), np.asarray(tokenizer.encode(continuation), dtype=np.int64)


def tokenise_candidates(candidates: list, kind: str, tokenizer) -> pd.DataFrame:
    """One row per candidate with token ids (:func:`candidate_ids`), its passage id
    (:func:`testsets.passage_key`), and its whole text with the continuation's UTF-8 length, so that a
    model with another tokenizer can score the same text and losses can be put per byte."""
    rows = []
    for c in candidates:
        context_ids, continuation_ids = candidate_ids(tokenizer, c.context, c.continuation)
        rows.append(
            {
                "example_id": c.example_id,
                "choice": c.choice,
                "is_gold": c.is_gold,
                "passage": testsets.passage_key(c.passage or c.context + c.continuation),
                "kind": kind,
                "context_ids": context_ids,
                "continuation_ids": continuation_ids,
                "context": c.context,
                "continuation": c.continuation,
                "continuation_bytes": len(c.continuation.encode("utf-8")),
            }
        )
    frame = pd.DataFrame(rows)
    return frame[frame["continuation_ids"].map(len) > 0].reset_index(drop=True)


def fit_to_context(context: np.ndarray, continuation: np.ndarray, context_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut ``context`` from the left (and an over-long continuation from the right) so that
    ``len(context) + len(continuation) <= context_length + 1`` with at least one context token."""
    continuation = continuation[:context_length]
    keep = context_length + 1 - len(continuation)
    return context[-keep:], continuation
