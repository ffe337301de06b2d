"""GPT/MPT-style decoder-only language models whose sizes are named in config.

One architecture family, scaled by ``d_model``, ``n_layers`` and ``n_heads`` (pre-LayerNorm blocks,
causal self-attention with ALiBi (MPT's choice) or learned positions, 4x GELU MLP, output head tied to
the token embedding; biases in every linear layer and LayerNorm unless ``bias`` is false, which makes
it exactly MPT, :mod:`proxyscale.models.export`), built from a
:class:`proxyscale.models.architecture.GPTConfig`, whose closed-form parameter count a unit test checks
against the built module.

Called with targets, the model returns the per-token loss computed a chunk of tokens at a time
(:func:`proxyscale.losses.per_token_head`), never the whole batch's logits; with
``checkpoint_blocks`` set, each block's activations are recomputed in the backward pass instead of
kept (activation checkpointing), so a block's input is all a layer keeps per token.

``attention`` chooses how ALiBi attention is computed (the same function, up to float rounding):
``sdpa``, PyTorch's scaled-dot-product attention with the bias as a mask (its fused memory-efficient
kernel on a GPU), or ``flex``, FlexAttention with ALiBi as a score modifier and a causal block mask,
which never materialises the bias and is compiled on a GPU (``bench/gpu_training.py`` times both).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from proxyscale.losses import PerToken, per_token_head, token_nll
from proxyscale.models.architecture import GPTConfig


def alibi_bias(n_heads: int, length: int) -> torch.Tensor:
    """ALiBi's causal attention bias (Press et al. 2022), shape (heads, length, length).

    Head h penalises attending k tokens back by k times its slope (:func:`alibi_slopes`); future
    positions get -inf. The built-in recency preference lets tiny models use the previous tokens from
    the first steps.
    """
    slopes = alibi_slopes(n_heads)
    pos = torch.arange(length)
    distance = (pos[:, None] - pos[None, :]).float()
    bias = -slopes[:, None, None] * distance
    return bias.masked_fill(distance < 0, float("-inf"))


ATTENTION = ("sdpa", "flex")


def alibi_slopes(n_heads: int) -> torch.Tensor:
    """ALiBi's head slopes (Press et al. 2022, as MPT computes them): for a power of two n, 2^(-8 h / n) for
    heads h = 1..n; for other head counts, those of the next power of two, the odd ones first, then the
    even ones, the first ``n_heads`` kept (the paper's rule for head counts that are not a power of two)."""
    padded = 2 ** math.ceil(math.log2(n_heads))
    slopes = 2.0 ** (-8.0 * torch.arange(1, padded + 1, dtype=torch.float64) / padded)
    if padded != n_heads:
        slopes = torch.cat([slopes[1::2], slopes[::2]])[:n_heads]
    return slopes.float()


def flex_alibi_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, slopes: torch.Tensor, mask, flex=None):
    """ALiBi attention through FlexAttention: ``score - slope_h x (query - key position)`` on the causal
    ``mask`` (a block mask from :func:`causal_block_mask`, which skips the blocks above the diagonal).
    ``flex`` is a compiled ``flex_attention`` (the model's own, :meth:`GPT.flex`), eager when None. The
    batch dimension is marked dynamic, so micro-batches of any number of rows share one compiled graph."""
    from torch.nn.attention.flex_attention import flex_attention

    def alibi(score, b, h, q_idx, kv_idx):
        return score - slopes[h] * (q_idx - kv_idx)

    if flex is None:
        return flex_attention(q, k, v, score_mod=alibi, block_mask=mask)
    if not torch.compiler.is_compiling():  # inside a compiled model, dynamo may not trace the marking
        for t in (q, k, v):
            torch._dynamo.maybe_mark_dynamic(t, 0)
    return flex(q, k, v, score_mod=alibi, block_mask=mask)


def causal_block_mask(t: int, device):
    from torch.nn.attention.flex_attention import create_block_mask

    return create_block_mask(lambda b, h, q_idx, kv_idx: q_idx >= kv_idx, None, None, t, t, device=device)


def biased_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(head_dim) + bias) v, with the fastest implementation for the device.

    On CUDA, SDPA's fused memory-efficient kernel keeps memory O(T) at paper-scale context lengths; on
    CPU, SDPA falls back to a slower path when given a bias, and plain ops are ~20% faster. Under
    torch.func transforms (traker's per-example gradients), SDPA's batching rule rejects the bias
    ("attn_bias: wrong shape (batch dimension)", seen on an H200), so plain ops run there too.
    """
    if q.is_cuda and not torch._C._functorch.is_functorch_wrapped_tensor(q):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias if bias.dtype == q.dtype else bias.to(q.dtype))
    scores = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5 + bias
    return torch.softmax(scores, dim=-1) @ v


class Block(nn.Module):
    """Pre-LN transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        d, bias = cfg.d_model, cfg.bias
        self.n_heads = cfg.n_heads
        self.ln1 = nn.LayerNorm(d, bias=bias)
        self.qkv = nn.Linear(d, 3 * d, bias=bias)
        self.proj = nn.Linear(d, d, bias=bias)
        self.ln2 = nn.LayerNorm(d, bias=bias)
        self.fc = nn.Linear(d, 4 * d, bias=bias)
        self.out = nn.Linear(4 * d, d, bias=bias)

    def forward(self, x: torch.Tensor, attend) -> torch.Tensor:
        """``attend(q, k, v)`` is the attention (heads first), chosen by the model for all its blocks."""
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.n_heads, d // self.n_heads).transpose(1, 2) for z in (q, k, v))
        y = attend(q, k, v)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


class GPT(nn.Module):
    """Decoder-only language model returning next-token logits of shape (batch, time, vocab)."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos = nn.Embedding(cfg.context_length, cfg.d_model) if cfg.position == "learned" else None
        if cfg.position == "alibi":
            self.register_buffer("alibi", alibi_bias(cfg.n_heads, cfg.context_length), persistent=False)
        else:
            self.alibi = None
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(cfg.d_model, bias=cfg.bias)
        self.checkpoint_blocks = False  # activation checkpointing (training loops set it per size)
        self.attention = "sdpa"  # or "flex" (module docstring)
        self.compile_flex = None  # compile FlexAttention: None, on CUDA only (eager flex is a slow reference)
        self._flex = None  # this model's compiled flex_attention, made on first use
        self._bias_cache: tuple | None = None
        self._mask_cache: tuple | None = None
        self.apply(self._init)
        # GPT-2 scaling of residual projections keeps the residual stream's variance depth-independent.
        for block in self.blocks:
            for lin in (block.proj, block.out):
                nn.init.normal_(lin.weight, std=0.02 / (2 * cfg.n_layers) ** 0.5)

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)

    def attention_bias(self, t: int) -> torch.Tensor | None:
        """ALiBi's bias for ``t`` tokens. Under bf16 autocast on a GPU it is cast once and shared by every
        layer (the fused kernel keeps it for the backward pass, so a copy per layer would cost heads x
        t^2 x 2 bytes each); otherwise it is a view of the buffer."""
        if self.alibi is None:
            return None
        if not (self.alibi.is_cuda and torch.is_autocast_enabled("cuda")):
            return self.alibi[:, :t, :t]
        dtype = torch.get_autocast_dtype("cuda")
        key = (t, dtype, self.alibi.data_ptr())
        if self._bias_cache is None or self._bias_cache[0] != key:
            self._bias_cache = (key, self.alibi[:, :t, :t].to(dtype).contiguous())
        return self._bias_cache[1]

    def hidden(self, idx: torch.Tensor) -> torch.Tensor:
        """The final (normalised) hidden state of every position, (batch, time, d_model)."""
        t = idx.shape[1]
        if t > self.cfg.context_length:
            raise ValueError(f"sequence of {t} tokens exceeds context_length={self.cfg.context_length}")
        x = self.tok(idx)
        if self.pos is not None:
            x = x + self.pos(torch.arange(t, device=idx.device))
        attend = self.attention_function(t, idx.device)
        for block in self.blocks:
            if self.checkpoint_blocks and torch.is_grad_enabled():
                x = checkpoint(block, x, attend, use_reentrant=False)
            else:
                x = block(x, attend)
        return self.ln_f(x)

    def attention_function(self, t: int, device):
        """The attention every block of a forward pass over ``t`` tokens uses: causal SDPA with learned
        positions; with ALiBi, ``self.attention``'s implementation."""
        if self.alibi is None:
            return lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True)
        if self.attention == "flex":
            if self._mask_cache is None or self._mask_cache[0] != (t, device):
                self._mask_cache = (
                    (t, device),
                    causal_block_mask(t, device),
                    alibi_slopes(self.cfg.n_heads).to(device),
                )
            _, mask, slopes = self._mask_cache
            flex = self.flex(device)
            return lambda q, k, v: flex_alibi_attention(q, k, v, slopes, mask, flex)
        bias = self.attention_bias(t)
        return lambda q, k, v: biased_attention(q, k, v, bias)

    def flex(self, device):
        """This model's compiled ``flex_attention`` (compiled once, on first use, dynamic over the batch);
        None where it runs eager (:attr:`compile_flex`)."""
        if not (device.type == "cuda" if self.compile_flex is None else self.compile_flex):
            return None
        if self._flex is None:
            from torch.nn.attention.flex_attention import flex_attention

            self._flex = torch.compile(flex_attention)
        return self._flex

    @property
    def context_length(self) -> int:
        return self.cfg.context_length

    def per_token(self, idx: torch.Tensor, targets: torch.Tensor, fn: PerToken) -> torch.Tensor:
        """``fn(logits, targets)`` at every position (a loss, a margin, a hit), without the batch's logits."""
        return per_token_head(fn, self.hidden(idx), self.tok.weight, targets)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        """Next-token logits (batch, time, vocab); with ``targets``, the per-token loss (batch, time) in fp32."""
        if targets is not None:
            return self.per_token(idx, targets, token_nll)
        return self.hidden(idx) @ self.tok.weight.T
