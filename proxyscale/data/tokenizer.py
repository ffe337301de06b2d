"""Tokenizers, chosen in config: byte-level, a byte-level BPE trained in the workflow, or any saved or
hub Hugging Face tokenizer.

A tokenizer here is anything with ``vocab_size``, ``eos_id``, ``encode(text) -> list[int]``,
``encode_batch(texts)`` (a sequence of token ids per text), ``decode(ids)``, ``byte_length(ids)`` and a
``fingerprint`` (equal for tokenizers that tokenise alike). The end-of-sequence id separates documents in training
streams and stands in for an empty context. Config entries:

- ``{kind: byte}``: UTF-8 bytes and one end-of-sequence token, nothing to train or fetch.
- ``{kind: bpe, vocab_size: N}``: a byte-level BPE trained by the workflow's ``train_tokenizer`` rule
  on the training sources' train documents (:func:`train_bpe`); the workflow adds the file's ``path``.
- ``{kind: hf, path: tokenizer.json}``: any saved `tokenizers` file, read without the network.
- ``{kind: hf, name: EleutherAI/gpt-neox-20b}``: a tokenizer on the Hugging Face hub (or its cache).

The Hugging Face kinds run on the Rust `tokenizers` library, whose batch encoding spreads over the
job's threads (``RAYON_NUM_THREADS``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path

import numpy as np

from proxyscale.errors import ConfigError, DataError, reason

EOS_TOKEN = "<|endoftext|>"  # the end-of-sequence token of the trained BPE (and of GPT-2 / GPT-NeoX)
_EOS_CANDIDATES = (EOS_TOKEN, "</s>", "<eos>", "[SEP]")


class ByteTokenizer:
    """UTF-8 bytes as tokens 0-255 and one end-of-sequence token (256)."""

    vocab_size = 257
    eos_id = 256
    fingerprint = "utf-8-bytes"

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        return [np.frombuffer(t.encode("utf-8"), dtype=np.uint8) for t in texts]

    def decode(self, ids: list[int]) -> str:
        return bytes(i for i in ids if i < 256).decode("utf-8", errors="replace")

    def byte_length(self, ids: list[int]) -> int:
        """UTF-8 bytes of the text ``ids`` stand for."""
        return sum(1 for i in ids if i < 256)


class FastTokenizer:
    """A Hugging Face `tokenizers` tokenizer with its end-of-sequence token (named, or the first of
    ``<|endoftext|>``, ``</s>``, ``<eos>``, ``[SEP]`` in its vocabulary)."""

    def __init__(self, tok, where: str, eos_token: str | None = None):
        self._tok = tok
        self.where = where
        self.vocab_size = tok.get_vocab_size(with_added_tokens=True)
        names = [eos_token] if eos_token else _EOS_CANDIDATES
        ids = [tok.token_to_id(n) for n in names]
        found = [i for i in ids if i is not None]
        if not found:
            raise ConfigError(
                f"tokenizer {where}: no end-of-sequence token ({', '.join(names)}) in its vocabulary; "
                "name one with tokenizer.eos_token"
            )
        self.eos_id = found[0]

    @property
    def backend(self):
        """The `tokenizers.Tokenizer` itself (what a transformers tokenizer wraps)."""
        return self._tok

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self._tok.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids: list[int]) -> str:
        return self._tok.decode(list(ids))

    def byte_length(self, ids: list[int]) -> int:
        """UTF-8 bytes of the text ``ids`` decode to (a character cut between tokens counts as its
        replacement character)."""
        return len(self.decode(ids).encode("utf-8"))

    @property
    def fingerprint(self) -> str:
        """A digest of the whole tokenizer (vocabulary, merges, normalisation): equal digests tokenise alike,
        so losses per token of models that share one are comparable."""
        return hashlib.sha256(self._tok.to_str().encode("utf-8")).hexdigest()[:16]


def _tokenizers():
    try:
        import tokenizers
    except ImportError:
        raise ConfigError(
            "tokenizer kinds 'bpe' and 'hf' need the 'tokenizers' package: pip install tokenizers"
        ) from None
    return tokenizers


def load_tokenizer_file(path: str, eos_token: str | None = None) -> FastTokenizer:
    """A tokenizer saved as a `tokenizers` JSON file (``tokenizer.json``), read without the network."""
    tokenizers = _tokenizers()
    if not Path(path).is_file():
        raise DataError(f"{path}: no such tokenizer file")
    try:
        tok = tokenizers.Tokenizer.from_file(str(path))
    except Exception as exc:  # the Rust library raises plain Exceptions for malformed files
        raise DataError(f"{path}: not a tokenizers JSON file ({reason(exc)})") from None
    return FastTokenizer(tok, str(path), eos_token)


def fetch_tokenizer(name: str, eos_token: str | None = None) -> FastTokenizer:
    """A tokenizer from the Hugging Face hub (or its local cache), with one clear line when neither has it."""
    tokenizers = _tokenizers()
    try:
        tok = tokenizers.Tokenizer.from_pretrained(name)
    except Exception as exc:  # offline, unknown name, or a repository without tokenizer.json
        raise ConfigError(
            f"tokenizer '{name}' cannot be fetched from the Hugging Face hub ({type(exc).__name__}); without "
            f"network, save its tokenizer.json where there is one (tokenizers.Tokenizer.from_pretrained('{name}')"
            ".save('tokenizer.json')) and set tokenizer: {kind: hf, path: tokenizer.json}"
        ) from None
    return FastTokenizer(tok, f"'{name}'", eos_token)


def train_bpe(docs: Iterable[str], vocab_size: int, batch_size: int = 1000):
    """A byte-level BPE tokenizer (GPT-2's scheme: bytes as the base alphabet, so any text encodes)
    with ``vocab_size`` tokens including the end-of-sequence token, trained on ``docs``.

    Returns the `tokenizers.Tokenizer`; save it with ``.save(path)``. Deterministic for given documents.
    """
    tokenizers = _tokenizers()
    from tokenizers import decoders, models, pre_tokenizers, trainers

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    if vocab_size <= len(alphabet) + 1:
        raise ConfigError(f"tokenizer.vocab_size must exceed {len(alphabet) + 1} (the bytes and end-of-sequence)")
    tok = tokenizers.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[EOS_TOKEN], initial_alphabet=alphabet, show_progress=False
    )
    tok.train_from_iterator(batched(docs, batch_size), trainer=trainer)
    return tok


def batched(items: Iterable, size: int) -> Iterator[list]:
    """Successive lists of ``size`` items (the last may be shorter): the unit of batch encoding."""
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


def make_tokenizer(spec: dict):
    """Tokenizer of a config entry (see the module docstring); ``bpe`` entries carry the trained file's ``path``."""
    kind = spec.get("kind", "byte")
    if kind == "byte":
        return ByteTokenizer()
    eos = spec.get("eos_token")
    if kind == "bpe":
        if not spec.get("path"):
            raise ConfigError("tokenizer.kind 'bpe' is trained by the workflow's train_tokenizer rule; no file given")
        return load_tokenizer_file(spec["path"], eos)
    if kind == "hf":
        if spec.get("path"):
            tok = load_tokenizer_file(spec["path"], eos)
        elif spec.get("name"):
            tok = fetch_tokenizer(spec["name"], eos)
        else:
            raise ConfigError(
                "tokenizer.kind 'hf' needs tokenizer.path (a tokenizer.json) or tokenizer.name (on the hub)"
            )
        if spec.get("vocab_size") and spec["vocab_size"] != tok.vocab_size:
            raise ConfigError(
                f"tokenizer.vocab_size: {spec['vocab_size']} (for the plan), but the tokenizer has {tok.vocab_size}"
            )
        return tok
    raise ConfigError(f"tokenizer.kind '{kind}' is not one of: byte, bpe, hf")


def describe_tokenizer(spec: dict) -> str:
    """The tokenizer of a config entry in words, for reports (losses are per token of it)."""
    kind = spec.get("kind", "byte")
    if kind == "byte":
        return "UTF-8 bytes (257 tokens with end-of-sequence)"
    if kind == "bpe":
        return f"a byte-level BPE of {spec['vocab_size']} tokens trained on the sources' training documents"
    return f"the tokenizer {spec.get('name') or spec.get('path')}"


def describe_tokenizers(spec: dict | None, imported: list[str]) -> str:
    """The tokenizers of a correlation run in words: ``spec``'s (the config's, None when no size is
    trained here) and, for the ``imported`` sizes, each model's own."""
    own = f"each imported model's own tokenizer ({', '.join(imported)})" if imported else ""
    if spec is None:
        return own
    return f"{describe_tokenizer(spec)} (sizes trained here) and {own}" if own else describe_tokenizer(spec)


def token_dtype(vocab_size: int):
    """Smallest unsigned numpy dtype that holds every token id."""
    return np.uint16 if vocab_size <= 1 << 16 else np.uint32
