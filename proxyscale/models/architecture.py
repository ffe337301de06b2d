"""The GPT family's architecture as data: what a config size builds, and its parameters and training
compute in closed form, so that training budgets (tokens = tokens_per_param x params) and compute (6 x
params x tokens) are known before a model is built, by the jobs, the config checks and the plan alike.
Nothing here imports torch (the workflow reads it when it parses the rules); the model itself is
:mod:`proxyscale.models.gpt`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

ARCHITECTURE_KEYS = ("d_model", "n_layers", "n_heads", "position", "bias")
"""The keys of a config size that shape the model (the others are the recipe's: batch sizes, lr, memory)."""
POSITIONS = ("alibi", "learned")
"""How a model knows token positions: ALiBi's attention biases (MPT's choice, the default) or learned
absolute position embeddings (GPT-2's)."""


@dataclass(frozen=True)
class GPTConfig:
    """Architecture of one model size."""

    vocab_size: int
    context_length: int
    d_model: int
    n_layers: int
    n_heads: int
    position: str = "alibi"
    bias: bool = True  # biases in every linear layer and LayerNorm; False: exactly MPT's blocks

    def __post_init__(self) -> None:
        if self.position not in POSITIONS:
            raise ValueError(f"position must be one of {', '.join(POSITIONS)}, not '{self.position}'")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")

    @classmethod
    def from_size(cls, size: dict, vocab_size: int, context_length: int) -> GPTConfig:
        """The architecture of a config size (under ``sizes``, ``attribution.lm.sizes`` or
        ``selection.sizes``) for a vocabulary and context: its :data:`ARCHITECTURE_KEYS`."""
        arch = {k: size[k] for k in ARCHITECTURE_KEYS if k in size}
        return cls(vocab_size=vocab_size, context_length=context_length, **arch)


def count_parameters(cfg: GPTConfig, include_embeddings: bool = True) -> int:
    """Number of trainable parameters of :class:`proxyscale.models.gpt.GPT` built from ``cfg``.

    Per block: two LayerNorms (4d), attention qkv+proj with biases (4d^2 + 4d), MLP (8d^2 + 5d); without
    biases (``bias`` false) the LayerNorms' gains (2d) and the weights (12d^2). Embeddings: tokens (V d,
    tied with the output head), learned positions (T d) unless ALiBi; final LayerNorm (2d, or d).
    """
    d, n_layers = cfg.d_model, cfg.n_layers
    per_block = 12 * d * d + (13 * d if cfg.bias else 2 * d)
    total = n_layers * per_block + (2 * d if cfg.bias else d)
    if include_embeddings:
        total += cfg.vocab_size * d + (cfg.context_length * d if cfg.position == "learned" else 0)
    return total


def token_budget(cfg: GPTConfig, tokens_per_param: float) -> int:
    """The Chinchilla budget of a model: ``tokens_per_param`` x its parameters, in whole tokens."""
    return math.ceil(tokens_per_param * count_parameters(cfg))


def training_flops(n_params: int, n_tokens: int) -> float:
    """Training compute by the standard 6 N D approximation (forward 2ND, backward 4ND)."""
    return 6.0 * n_params * n_tokens
