"""Tokenizers, chosen in config: byte-level by default, any Hugging Face tokenizer at full scale.

A tokenizer here is anything with ``vocab_size``, ``eos_id`` and ``encode(text) -> list[int]``. The
end-of-sequence id separates documents in training streams and stands in for an empty context.
"""

from __future__ import annotations

import numpy as np

from proxyscale.errors import ConfigError


class ByteTokenizer:
    """UTF-8 bytes as tokens 0-255 and one end-of-sequence token (256)."""

    vocab_size = 257
    eos_id = 256

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: list[int]) -> str:
        return bytes(i for i in ids if i < 256).decode("utf-8", errors="replace")


class HFTokenizer:
    """A Hugging Face tokenizer (e.g. ``EleutherAI/gpt-neox-20b``), loaded from the local cache or hub."""

    def __init__(self, name: str):
        try:
            from transformers import AutoTokenizer
        except ImportError:
            raise ConfigError(
                f"tokenizer.kind 'hf' ({name}) needs the 'transformers' package: pip install transformers"
            ) from None
        self._tok = AutoTokenizer.from_pretrained(name)
        self.vocab_size = len(self._tok)
        self.eos_id = self._tok.eos_token_id

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text, add_special_tokens=False)

    def decode(self, ids: list[int]) -> str:
        return self._tok.decode(ids)


def make_tokenizer(spec: dict):
    """Tokenizer from its config entry ``{kind: byte}`` or ``{kind: hf, name: ...}``."""
    kind = spec.get("kind", "byte")
    if kind == "byte":
        return ByteTokenizer()
    if kind == "hf":
        if not spec.get("name"):
            raise ConfigError("tokenizer.name is required when tokenizer.kind is 'hf'")
        return HFTokenizer(spec["name"])
    raise ConfigError(f"tokenizer.kind '{kind}' is not one of: byte, hf")


def token_dtype(vocab_size: int):
    """Smallest unsigned numpy dtype that holds every token id."""
    return np.uint16 if vocab_size <= 1 << 16 else np.uint32
