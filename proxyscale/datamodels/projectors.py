"""Random projections of per-example gradients for TRAK, chosen by device.

traker's CUDA projector (Rademacher, ``fast_jl`` kernels) when a GPU and ``fast_jl`` are present;
otherwise traker's CPU projector (Gaussian), patched so scoring can regenerate its matrix.
"""

from __future__ import annotations

import torch
from trak.projectors import BasicProjector, CudaProjector, ProjectionType

from proxyscale.models import count_params


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


def fast_jl_available() -> bool:
    try:
        import fast_jl  # noqa: F401
    except ImportError:
        return False
    return True


def make_projector(grad_dim: int, proj_dim: int, seed: int, device: torch.device):
    """traker's CUDA projector when a GPU and ``fast_jl`` are there, else the CPU projector."""
    if device.type == "cuda" and fast_jl_available():
        return CudaProjector(grad_dim, proj_dim, seed, ProjectionType.rademacher, device, max_batch_size=32)
    return CPUProjector(grad_dim, proj_dim, seed, ProjectionType.normal, device, block_size=proj_dim)


def effective_proj_dim(model: torch.nn.Module, proj_dim: int) -> int:
    """The projection cannot usefully exceed the number of parameters (Phi^T Phi would be singular)."""
    return min(proj_dim, count_params(model))
