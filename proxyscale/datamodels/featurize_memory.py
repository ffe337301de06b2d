"""How much memory featurizing a GPT checkpoint for TRAK takes, and the micro-batch that fits a device.

Per-example gradients run under ``torch.func`` (traker's ``FunctionalGradientComputer``), in fp32 and
with plain attention (the fused kernels have no batching rule there), with nothing checkpointed. One
process holds, in bytes, for a micro-batch of ``b`` windows of ``T`` tokens of a model of ``P``
parameters, ``L`` layers, width ``d``, ``h`` heads and vocabulary ``V``:

- the weights: ``4 P`` (fp32, no optimiser);
- per example: the activations autograd saves (``activation_bytes_per_token_layer`` with fp32 and
  plain attention, ``64 d + 4 h T + 16`` per token and layer, times ``T L``), the logits with their
  log-softmax and gradient (``3 x 4 T V``), its gradient (``4 P``) and the flattened copy the projector
  reads (``4 P``);
- the projector's own state: SJLT's gather index and signed scale per parameter (``12 P``, int64 and
  fp32; on a GPU also its gather buffer, :data:`proxyscale.datamodels.sjlt.CUDA_GATHER_BYTES`), traker's
  CPU projector's cached p x k matrix (``4 P k``), nothing for fast_jl's CUDA projector;
- the projection's output and the CUDA reserve of :mod:`proxyscale.training.memory`.

:func:`trak_micro_batch` resolves ``trak.micro_batch_size: auto`` to the largest micro-batch (at most
the TRAK batch) whose estimate fits the device with the training model's margin; models other than a
GPT (the vision setting) take the whole batch at once.
"""

from __future__ import annotations

import logging

import torch

from proxyscale.datamodels.sjlt import CUDA_GATHER_BYTES
from proxyscale.errors import ConfigError
from proxyscale.models.architecture import GPTConfig, count_parameters
from proxyscale.training.memory import CUDA_RESERVE, GIB, MARGIN, activation_bytes_per_token_layer, device_memory

log = logging.getLogger(__name__)


def projector_bytes(p: int, proj_dim: int, projector: str, cuda: bool) -> float:
    """What the configured projector (``trak.projector``) holds for a model of ``p`` parameters (module
    docstring); ``dense`` on a GPU is taken to be fast_jl's (the ``gpu`` extra)."""
    if projector == "sjlt":
        return 12.0 * p + (CUDA_GATHER_BYTES if cuda else 0.0)
    return 0.0 if cuda else 4.0 * p * proj_dim


def featurize_memory(
    cfg: GPTConfig, micro_batch: int, proj_dim: int, cuda: bool, projector: str = "sjlt"
) -> dict[str, float]:
    """The peak memory of featurizing ``micro_batch`` windows at once, by part (module docstring)."""
    p, t = count_parameters(cfg), cfg.context_length
    activations = activation_bytes_per_token_layer(cfg, mixed=False, fused=False) * t * cfg.n_layers
    parts = {
        "weights": 4.0 * p,
        "activations": micro_batch * float(activations),
        "logits": micro_batch * 3.0 * 4 * t * cfg.vocab_size,
        "gradients": micro_batch * 4.0 * p,
        "projector": micro_batch * (4.0 * p + 4 * proj_dim) + projector_bytes(p, proj_dim, projector, cuda),
        "reserve": CUDA_RESERVE if cuda else 0.0,
    }
    return {**parts, "total": sum(parts.values())}


def choose_micro_batch(
    cfg: GPTConfig, batch: int, proj_dim: int, capacity: float, cuda: bool, projector: str = "sjlt"
) -> int:
    """The largest micro-batch of at most ``batch`` whose estimate fits ``capacity`` less the margin."""
    usable = capacity * (1 - MARGIN)
    fits = [b for b in range(1, batch + 1) if featurize_memory(cfg, b, proj_dim, cuda, projector)["total"] <= usable]
    if not fits:
        need = featurize_memory(cfg, 1, proj_dim, cuda, projector)["total"]
        raise ConfigError(
            f"trak.micro_batch_size: one window's per-example gradient needs about {need / GIB:.1f} GiB, more "
            f"than the {capacity / GIB:.1f} GiB of this device less the {MARGIN:.0%} margin; use a larger device"
        )
    return fits[-1]


def trak_micro_batch(model: torch.nn.Module, trak: dict, device: torch.device) -> int:
    """``trak.micro_batch_size`` resolved for ``model`` on ``device`` (module docstring)."""
    setting, batch = trak.get("micro_batch_size", "auto"), trak["batch_size"]
    if setting != "auto":
        return min(int(setting), batch)
    cfg = getattr(model, "cfg", None)
    if not isinstance(cfg, GPTConfig):
        return batch
    projector, cuda = trak.get("projector", "sjlt"), device.type == "cuda"
    micro = choose_micro_batch(cfg, batch, trak["proj_dim"], device_memory(device), cuda, projector)
    estimate = featurize_memory(cfg, micro, trak["proj_dim"], cuda, projector)["total"]
    log.info(
        "TRAK micro-batch %d of %d: about %.2f GiB of %.1f GiB",
        micro,
        batch,
        estimate / GIB,
        device_memory(device) / GIB,
    )
    return micro
