"""Tiny random Hugging Face ``transformers`` checkpoints, saved offline, for the imported-model tests.

Each is a causal language model of a given architecture with its own byte-level BPE tokenizer (trained
on a few sentences), written with ``save_pretrained`` as a team would publish one.
"""

from __future__ import annotations

from pathlib import Path

from proxyscale.data.tokenizer import EOS_TOKEN, train_bpe

TEXT = [
    "The quick brown fox jumps over the lazy dog. " * 3,
    "Question: Who wrote Hamlet?\nAnswer: William Shakespeare",
    "It was the best of times, it was the worst of times, it was the age of wisdom.",
]


def tokenizer(vocab_size: int):
    """A ``transformers`` fast tokenizer over a byte-level BPE of ``vocab_size`` tokens."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=train_bpe(TEXT, vocab_size), eos_token=EOS_TOKEN)


def tiny_model(directory: Path, arch: str, width: int, vocab_size: int, seed: int = 0, context: int = 64) -> Path:
    """A random ``arch`` ("gpt_neox" or "llama") model of hidden size ``width`` with its tokenizer, saved
    in ``directory``."""
    import torch
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM, LlamaConfig, LlamaForCausalLM

    tok = tokenizer(vocab_size)
    common = {"vocab_size": len(tok), "hidden_size": width, "num_hidden_layers": 1, "num_attention_heads": 2,
              "intermediate_size": 2 * width, "max_position_embeddings": context,
              "eos_token_id": tok.eos_token_id}  # fmt: skip
    torch.manual_seed(seed)
    if arch == "gpt_neox":
        model = GPTNeoXForCausalLM(GPTNeoXConfig(**common))
    elif arch == "llama":
        model = LlamaForCausalLM(LlamaConfig(**common))
    else:
        raise ValueError(arch)
    model.save_pretrained(directory)
    tok.save_pretrained(directory)
    return directory
