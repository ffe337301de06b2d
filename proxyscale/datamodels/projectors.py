"""Random projections of per-example gradients for TRAK, by config and device, one per checkpoint.

``trak.projector: sjlt`` (the default) is the sparse projector of :mod:`proxyscale.datamodels.sjlt` on
any device: its cost grows with the parameters only, not with the projection size, and it needs no
matrix. ``trak.projector: dense`` is traker's own choice:

- on a GPU with ``fast_jl``, traker's CUDA projector (Rademacher). fast_jl indexes a batch of
  gradients with 32-bit integers, so while parameters x batch rows stay below 2^32 one
  ``CudaProjector`` covers the whole gradient; past that (models above about 134M parameters at batch
  32), traker's ``ChunkedCudaProjector`` projects parameter chunks that each stay below the limit and
  sums them, as traker itself does. fast_jl computes the output in tiles of 512, so the projection
  size must be a multiple of 512 there;
- on the CPU, traker's CPU projector (Gaussian) with its whole p x k matrix cached, patched so scoring
  can regenerate it;
- on a GPU without ``fast_jl``, SJLT stands in.

A model with no more parameters than the projection size keeps its exact gradients
(:class:`ExactGradients`): TRAK's scores are unchanged by any invertible projection, so a random one
could only lose information, and SJLT onto as many dimensions as parameters is not invertible (its
parameter blocks' buckets collide, some stay empty, and Phi^T Phi is singular).

Algorithm 2 of the paper draws a new projection for every model: :func:`checkpoint_seed` derives each
checkpoint's projection seed from the configured ``projector_seed`` and the checkpoint index.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch
from trak.projectors import BasicProjector, ChunkedCudaProjector, CudaProjector, NoOpProjector, ProjectionType
from trak.utils import get_parameter_chunk_sizes

from proxyscale.datamodels.sjlt import SJLTProjector
from proxyscale.errors import ConfigError
from proxyscale.models import built_parameters

PROJECTORS = ("sjlt", "dense")
PROJECTIONS = {  # what a store's projector class computes, as reports name it
    "SJLTProjector": "sparse Johnson-Lindenstrauss",
    "CPUProjector": "dense Gaussian",
    "CudaProjector": "dense Rademacher fast_jl",
    "ChunkedCudaProjector": "dense Rademacher fast_jl",
    "ExactGradients": "exact gradients",
}
UINT32_LIMIT = int(np.iinfo(np.uint32).max)
CUDA_PROJ_DIM_MULTIPLE = 512
log = logging.getLogger(__name__)
CUDA_KERNEL_BATCHES = (8, 16, 32)  # fast_jl's kernels take these batches at once (they loop over larger ones)


class CPUProjector(BasicProjector):
    """traker's CPU projector, with its matrix regenerated after it was freed.

    traker 0.3.2 frees the projection matrix at the end of ``finalize_features``; a single-block
    ``BasicProjector`` then fails in ``score`` ("no attribute 'proj_matrix'") unless the model id
    changes. The matrix is regenerated from the same generator state, so scoring projects with exactly
    the matrix featurizing used.
    """

    def project(self, grads, model_id: int) -> torch.Tensor:
        if not self.proj_matrix_available and self.num_blocks == 1 and model_id == self.model_id:
            self.generate_sketch_matrix(self.generator_states[0])
        return super().project(grads, model_id)


class ExactGradients(NoOpProjector):
    """No projection, for a model with at most ``proj_dim`` parameters: its whole gradient, scaled by
    sqrt(p) as a projection onto k = p dimensions is (E[|Pg|^2] = k |g|^2), so ``lambda_reg`` means the same."""

    def project(self, grads, model_id: int) -> torch.Tensor:
        return super().project(grads, model_id) * math.sqrt(self.proj_dim)


def checkpoint_seed(projector_seed: int, checkpoint: int) -> int:
    """The projection seed of checkpoint ``checkpoint``: distinct per checkpoint, fixed by the config seed."""
    return int(np.random.SeedSequence([projector_seed, checkpoint]).generate_state(1)[0] % (2**31 - 1))


def fast_jl_available() -> bool:
    try:
        import fast_jl  # noqa: F401
    except ImportError:
        return False
    return True


def projector_kind(device: torch.device, choice: str) -> str:
    """What projects on ``device`` for the configured ``choice``: ``sjlt``, ``cuda`` (fast_jl) or ``cpu``."""
    if choice not in PROJECTORS:
        raise ConfigError(f"trak.projector: '{choice}' is not a projector ({', '.join(PROJECTORS)})")
    if choice == "sjlt":
        return "sjlt"
    if device.type == "cuda":
        return "cuda" if fast_jl_available() else "sjlt"
    return "cpu"


def make_projector(
    model: torch.nn.Module, proj_dim: int, seed: int, device: torch.device, batch_size: int, choice: str
):
    """The projector ``choice`` (``trak.projector``) makes for ``model``'s gradients on ``device``, for
    batches of up to ``batch_size`` rows."""
    grad_dim = built_parameters(model)
    kind = projector_kind(device, choice)
    if proj_dim >= grad_dim:
        return ExactGradients(grad_dim, grad_dim, seed, device=device)
    if device.type == "cuda" and choice == "dense" and kind == "sjlt":
        log.info("trak.projector dense: fast_jl is not installed (the gpu extra), so SJLTProjector projects")
    if kind == "sjlt":
        blocks = [p.numel() for p in model.parameters()]
        return SJLTProjector(grad_dim, proj_dim, seed, device=device, block_sizes=blocks)
    if kind == "cpu":
        return CPUProjector(grad_dim, proj_dim, seed, ProjectionType.normal, device, block_size=proj_dim)
    if proj_dim % CUDA_PROJ_DIM_MULTIPLE:
        raise ConfigError(
            f"trak.proj_dim: {proj_dim} is not a multiple of {CUDA_PROJ_DIM_MULTIPLE}, which traker's CUDA "
            "projector (fast_jl) needs; choose a multiple, or trak.projector: sjlt"
        )
    max_batch = max(b for b in CUDA_KERNEL_BATCHES if b <= max(batch_size, CUDA_KERNEL_BATCHES[0]))
    if grad_dim * batch_size < UINT32_LIMIT:
        return CudaProjector(grad_dim, proj_dim, seed, ProjectionType.rademacher, device, max_batch_size=max_batch)
    max_chunk, chunks = get_parameter_chunk_sizes(model, batch_size)
    seeds = np.random.default_rng(seed).integers(0, 2**31 - 1, size=len(chunks))
    per_chunk = [
        CudaProjector(size, proj_dim, int(s), ProjectionType.rademacher, device, max_batch_size=max_batch)
        for size, s in zip(chunks, seeds)
    ]
    return ChunkedCudaProjector(per_chunk, max_chunk, chunks, batch_size, device, torch.float32)


def effective_proj_dim(model: torch.nn.Module, proj_dim: int) -> int:
    """The projection cannot usefully exceed the number of parameters (Phi^T Phi would be singular); at the
    number of parameters, :func:`make_projector` keeps the exact gradients."""
    return min(proj_dim, built_parameters(model))
