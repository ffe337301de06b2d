"""How much memory training a GPT size takes, and the micro-batch that fits a device.

The model counts what one training process holds at its peak, in bytes:

- **weights, gradients, optimiser state**: fp32 weights (4 P), gradients (4 P; with several processes
  DDP's communication buckets, whose views the gradients are, :mod:`proxyscale.training.loop`), AdamW's
  two moments (8 P); with bf16 autocast, the bf16 copies of the weights that the forward pass casts and
  keeps for the backward (2 P).
- **activations**: what autograd saves for the backward pass, per token and layer, counted for this
  implementation (:mod:`proxyscale.models.gpt`) with ``e`` bytes per activation element (2 under bf16
  autocast, 4 in fp32) and 4 for the fp32 residual stream and LayerNorm inputs::

      LayerNorm inputs 2 x (4d + 8) + linear inputs (d + d + d) e + qkv output 3d e + MLP hidden 2 x 4d e
      + attention: fused kernel: its output d e + log-sum-exp 4 h; plain softmax (ALiBi on CPU): 4 h T

  i.e. 38d + 4h + 16 bytes with bf16 and a fused attention kernel (llm-foundry's rule of thumb is 34d).
  With activation checkpointing a layer keeps only its input (4d), and one layer's activations are
  rebuilt at a time in the backward pass. Add the embedding's indices, the final LayerNorm and, with a
  fused kernel, ALiBi's bias in the compute dtype (heads x T^2, cast once, shared by the layers and
  kept by the kernel for the backward; plain attention reads the model's own buffer).
- **logits**: the loss computes a chunk of tokens x vocabulary at a time
  (:func:`proxyscale.losses.per_token_head`) and recomputes it in the backward; a batch that
  fits one chunk keeps its fp32 log-probabilities instead (4 V per token).
- **transient**: the largest buffers that live only during the backward pass: a logits chunk and its
  gradient with the output head's weight gradient for the chunk (V d in the compute dtype, its fp32
  cast, and the fp32 sum over chunks), or a rebuilt checkpointed layer; and on a GPU a fixed reserve for
  the CUDA context and the allocator's fragmentation (GPU jobs run with PyTorch's expandable segments,
  :func:`proxyscale.runner.run_job`, which keeps fragmentation small).
- **communication**: with several processes on GPUs, NCCL's own buffers, a fixed reserve.

``tests/test_memory.py`` checks the activation count against the bytes autograd really saves
(``torch.autograd.graph.saved_tensors_hooks``) on CPU configurations; ``bench/gpu_training.py`` sets
the whole estimate against ``torch.cuda.max_memory_allocated`` on a GPU.

:func:`choose` resolves a size's ``micro_batch_size: auto`` to the largest micro-batch whose estimate
fits the device with a margin, and ``activation_checkpointing: auto`` to on only where no micro-batch
fits without it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from proxyscale.errors import ConfigError
from proxyscale.losses import LOGIT_CHUNK_ENTRIES
from proxyscale.models.architecture import GPTConfig, count_parameters
from proxyscale.training.distributed import Group
from proxyscale.training.recipe import Recipe

log = logging.getLogger(__name__)
GIB = 2**30
MARGIN = 0.10  # share of the device's memory the choice leaves free
CUDA_RESERVE = 1.5 * GIB  # CUDA context, cuBLAS workspaces, allocator fragmentation
NCCL_RESERVE = 1.0 * GIB
"""NCCL's buffers in a process of a group on GPUs: NCCL_BUFFSIZE (4 MiB by default) per channel, peer
and protocol, with up to 32 channels between NVLink peers; an estimate, not measured here, and low where
NCCL's NVLink SHARP (NVLS, on NVSwitch systems) reserves more."""


@dataclass(frozen=True)
class Estimate:
    """Peak memory of one training process, in bytes, by part."""

    weights: float
    gradients: float
    optimizer: float
    weight_copies: float
    activations: float
    logits: float
    transient: float
    communication: float = 0.0

    @property
    def total(self) -> float:
        return sum(vars(self).values())


def activation_bytes_per_token_layer(cfg: GPTConfig, mixed: bool, fused: bool) -> float:
    """Bytes autograd saves per token and layer (module docstring)."""
    d, h, e = cfg.d_model, cfg.n_heads, (2 if mixed else 4)
    saved = 2 * (4 * d + 8) + 3 * d * e + 3 * d * e + 2 * 4 * d * e
    return saved + (d * e + 4 * h if fused else 4 * h * cfg.context_length)


def training_memory(
    cfg: GPTConfig,
    micro_batch: int,
    mixed: bool,
    fused_attention: bool,
    checkpointing: bool = False,
    cuda: bool | None = None,
    chunk_entries: int = LOGIT_CHUNK_ENTRIES,
    world: int = 1,
) -> Estimate:
    """The peak memory of training ``cfg`` with ``micro_batch`` sequences of ``context_length`` tokens per
    forward and backward pass (module docstring), in a process of a group of ``world``. ``mixed``: bf16
    autocast; ``fused_attention``: a fused attention kernel (any GPU; on a CPU only without ALiBi); ``cuda``
    (default: ``mixed``) adds the reserves."""
    p = count_parameters(cfg)
    d, v, t = cfg.d_model, cfg.vocab_size, cfg.context_length
    tokens = micro_batch * t
    e = 2 if mixed else 4
    layer = activation_bytes_per_token_layer(cfg, mixed, fused_attention) * tokens
    kept_per_layer = 4 * d * tokens if checkpointing else layer
    bias = cfg.n_heads * t * t * e if cfg.position == "alibi" and fused_attention else 0
    final = 8 * tokens + (4 * d + 8) * tokens  # token indices, final LayerNorm input
    chunked = tokens * v > chunk_entries
    if chunked:  # the head keeps the hidden states; one chunk lives at a time in the backward
        logits, chunk = 4 * d * tokens, min(tokens, max(1, chunk_entries // v)) * v
        head_transient = chunk * (e + 4 + 4 + 4)  # logits, fp32 copy, log-probabilities, their gradient
    else:  # kept log-probabilities, and the gradient of the logits in the backward
        logits = (d * e + 4 * v) * tokens
        head_transient = tokens * v * (4 + e)
    head_transient += (e + 4 + 4) * v * d  # the head's weight gradient: the chunk's, its fp32 cast, their sum
    transient = max(head_transient, layer if checkpointing else 0) + 2 * 4 * 4 * d * tokens
    cuda = mixed if cuda is None else cuda
    return Estimate(
        weights=4 * p,
        gradients=4 * p,
        optimizer=8 * p,
        weight_copies=2 * p if mixed else 0,
        activations=cfg.n_layers * kept_per_layer + bias + final,
        logits=logits,
        transient=transient + (CUDA_RESERVE if cuda else 0),
        communication=NCCL_RESERVE if cuda and world > 1 else 0.0,
    )


def device_memory(device: torch.device) -> float:
    """Bytes one process may use: the GPU's memory, or the host's available memory on a CPU."""
    if device.type == "cuda":
        return float(torch.cuda.get_device_properties(device).total_memory)
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return float(line.split()[1]) * 1024
    return float("inf")


@dataclass(frozen=True)
class Choice:
    """A resolved micro-batch and checkpointing choice, with its estimate."""

    micro_batch_size: int
    activation_checkpointing: bool
    estimate: Estimate


def choose(
    cfg: GPTConfig,
    rows: int,
    capacity: float,
    mixed: bool,
    fused_attention: bool,
    micro_batch_size: int | str = "auto",
    activation_checkpointing: bool | str = "auto",
    where: str = "sizes",
    world: int = 1,
) -> Choice:
    """The micro-batch (at most ``rows``, this process's share of the global batch) and checkpointing for
    a size's settings (an int or ``auto``; true, false or ``auto``) on a device of ``capacity`` bytes.
    ``auto`` takes the largest micro-batch whose estimate fits ``capacity`` less the margin, with
    checkpointing on only when no micro-batch fits without it. Nothing fitting is a config error naming
    ``where``."""
    usable = capacity * (1 - MARGIN)
    options = [False, True] if activation_checkpointing == "auto" else [bool(activation_checkpointing)]

    def estimate(micro: int, ckpt: bool) -> Estimate:
        return training_memory(cfg, micro, mixed, fused_attention, ckpt, world=world)

    if micro_batch_size != "auto":
        micro = min(int(micro_batch_size), rows)
        ckpt = next((c for c in options if estimate(micro, c).total <= usable), options[-1])
        return Choice(micro, ckpt, estimate(micro, ckpt))
    for ckpt in options:
        if estimate(1, ckpt).total > usable:
            continue
        lo, hi = 1, rows  # the largest micro-batch that fits: estimates grow with it
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if estimate(mid, ckpt).total <= usable else (lo, mid - 1)
        return Choice(lo, ckpt, estimate(lo, ckpt))
    need = estimate(1, options[-1]).total
    raise ConfigError(
        f"{where}: one sequence of {cfg.context_length} tokens needs about {need / GIB:.1f} GiB to train "
        f"({'with' if options[-1] else 'without'} activation checkpointing), more than the "
        f"{capacity / GIB:.1f} GiB this device has less the {MARGIN:.0%} margin; use a device with more memory"
        + ("" if options[-1] else " or activation_checkpointing: auto")
    )


def recipe_for(
    size: dict, training: dict, cfg: GPTConfig | None, device: torch.device, group: Group, where: str
) -> tuple[Recipe, Choice | None]:
    """A config size's recipe on ``device`` with its memory settings resolved: for a GPT (``cfg``) by
    :func:`choose` on this process's share of the batch; for other models (``cfg`` None) ``auto`` means
    the whole share at once and no checkpointing."""
    micro, ckpt = size.get("micro_batch_size", "auto"), size.get("activation_checkpointing", "auto")
    if cfg is None:
        memory = {"micro_batch_size": None if micro == "auto" else int(micro), "activation_checkpointing": ckpt is True}
        return Recipe.from_size(size, training, **memory), None
    share = group.share(size["batch_size"])
    cuda = device.type == "cuda"
    choice = choose(cfg, share.stop - share.start, device_memory(device), cuda, cuda or cfg.position != "alibi",
                    micro, ckpt, where, group.world)  # fmt: skip
    memory = {"micro_batch_size": choice.micro_batch_size, "activation_checkpointing": choice.activation_checkpointing}
    log.info(
        "%s: micro-batch %d of the %d rows per process, activation checkpointing %s: about %.2f GiB of %.1f GiB",
        where,
        choice.micro_batch_size,
        share.stop - share.start,
        "on" if choice.activation_checkpointing else "off",
        choice.estimate.total / GIB,
        device_memory(device) / GIB,
    )
    return Recipe.from_size(size, training, **memory), choice
