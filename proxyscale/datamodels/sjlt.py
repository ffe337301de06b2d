"""A sparse Johnson-Lindenstrauss projector (SJLT, a count sketch) for TRAK, as a traker projector.

Every gradient coordinate goes to exactly one of the ``k`` output coordinates, with a random sign.
A parameter's gradient is cut into rows of ``k`` consecutive coordinates, and each row is sent to the
``k`` outputs by its own random permutation (the last, shorter row to a random subset of them): the
buckets are balanced, two coordinates of one row never collide, and two coordinates of different rows
collide with probability exactly ``1/k``, as in a count sketch with random buckets. Signs are
independent per coordinate, so the sketch is unbiased for every inner product, and its variance is at
most that of a count sketch whose buckets are drawn independently.

Projecting costs one gather, one multiply and one sum per coordinate (no matrix), whatever ``k`` is,
and the projector holds O(p) memory: an index and a sign per coordinate. The gather works on
``CHUNK`` coordinates at a time into one reused buffer on a CPU, and each row's gather stays within
``k`` consecutive coordinates, so it runs at close to memory speed; on a GPU, where every gather is a
kernel launch, the buffer holds :data:`CUDA_GATHER_BYTES` (hundreds of rows of ``k`` at once). The projector works per
parameter block, on the dict of per-example gradients traker's gradient computer returns, so the
gradients are never concatenated into one (batch, p) matrix first; a concatenated matrix is split
into the same blocks and gives the same result.

Scale: entries are ``±sqrt(k)``, so ``E[|Sg|^2] = k |g|^2`` as for traker's dense Gaussian projector,
and ``lambda_reg`` means the same with either.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from trak.projectors import AbstractProjector, ProjectionType

SEED_STRIDE = 1_000_003  # model ids get projections of their own, as traker's projectors do
CHUNK = 16_384  # coordinates gathered at a time on a CPU: the batch's buffer stays in cache (a whole-block
# gather allocates batch x block floats and runs several times slower)
CUDA_GATHER_BYTES = 256 * 2**20  # the gather buffer on a GPU, where each gather is a kernel launch: as
# many rows of k as fit (a 760m micro-batch of 16 at k = 15,360: 273 rows, 180 gathers rather than 49K)


def gather_coordinates(device: torch.device, batch: int, dtype: torch.dtype) -> int:
    """Coordinates gathered at once for ``batch`` gradients: :data:`CHUNK` on a CPU, as many as fill
    :data:`CUDA_GATHER_BYTES` on a GPU."""
    if device.type == "cuda":
        return CUDA_GATHER_BYTES // (batch * torch.finfo(dtype).bits // 8)
    return CHUNK


class SJLTProjector(AbstractProjector):
    """Count-sketch projection of gradients of ``grad_dim`` coordinates onto ``proj_dim``.

    ``block_sizes`` are the sizes of the parameter blocks in the order traker's gradient dict lists
    them (``model.named_parameters()``); one block of ``grad_dim`` when not given. The sketch is a
    function of the seed, the model id and the block sizes only.
    """

    def __init__(
        self,
        grad_dim: int,
        proj_dim: int,
        seed: int,
        proj_type: ProjectionType | str = ProjectionType.rademacher,
        device: torch.device | str = "cpu",
        block_sizes: Sequence[int] | None = None,
        dtype: torch.dtype = torch.float32,
        model_id: int = 0,
        **_,
    ) -> None:
        super().__init__(grad_dim, proj_dim, seed, ProjectionType.rademacher, device)
        self.block_sizes = [int(n) for n in (block_sizes or [grad_dim])]
        if sum(self.block_sizes) != grad_dim:
            raise ValueError(f"SJLT: block sizes add up to {sum(self.block_sizes)}, not grad_dim {grad_dim}")
        self.dtype = dtype
        self.model_id = model_id
        self.blocks = None
        self._build()

    def _build(self) -> None:
        """Draw every block's (gather index, signed scale, tail buckets) for the current model id."""
        k, scale = self.proj_dim, math.sqrt(self.proj_dim)
        gen = torch.Generator().manual_seed(self.seed + SEED_STRIDE * self.model_id)
        self.blocks = []
        for n in self.block_sizes:
            rows, tail = divmod(n, k)
            perms = torch.rand(rows + (tail > 0), k, generator=gen).argsort(dim=1)
            signs = (torch.randint(0, 2, (n,), generator=gen, dtype=self.dtype) * 2 - 1) * scale
            gather = (perms[:rows] + k * torch.arange(rows).unsqueeze(1)).reshape(-1)
            # output c of row r reads coordinate gather[r * k + c], so signs follow the gather order
            full_signs = signs[gather]
            tail_buckets = perms[rows, :tail] if tail else perms[:0, :0].reshape(-1)
            self.blocks.append(
                (
                    gather.to(self.device),
                    full_signs.to(self.device),
                    tail_buckets.to(self.device),
                    signs[rows * k :].to(self.device),
                )
            )

    def _split(self, grads) -> list[torch.Tensor]:
        """The gradient as (batch, block size) matrices, from traker's dict or a (batch, p) matrix."""
        if isinstance(grads, dict):
            parts = [g.reshape(g.shape[0], -1) for g in grads.values()]
        else:
            parts = list(torch.split(grads, self.block_sizes, dim=1))
        sizes = [part.shape[1] for part in parts]
        if sizes != self.block_sizes:
            raise ValueError(f"SJLT: gradient blocks {sizes} do not match the projector's {self.block_sizes}")
        return parts

    @torch.no_grad()
    def project(self, grads, model_id: int) -> torch.Tensor:
        if model_id != self.model_id or self.blocks is None:
            self.model_id = model_id
            self._build()
        parts = self._split(grads)
        batch, k = parts[0].shape[0], self.proj_dim
        rows_per_chunk = max(1, gather_coordinates(torch.device(self.device), batch, self.dtype) // k)
        buffer = torch.empty(batch, rows_per_chunk * k, dtype=self.dtype, device=self.device)
        out = torch.zeros(batch, k, dtype=self.dtype, device=self.device)
        for part, (gather, full_signs, tail_buckets, tail_signs) in zip(parts, self.blocks):
            part = part.detach().to(device=self.device, dtype=self.dtype)
            for start in range(0, len(gather), rows_per_chunk * k):
                index = gather[start : start + rows_per_chunk * k]
                rows = torch.index_select(part, 1, index, out=buffer[:, : len(index)])
                rows.mul_(full_signs[start : start + len(index)])
                out += rows.view(batch, -1, k).sum(dim=1)
            if len(tail_buckets):
                out[:, tail_buckets] += part[:, len(gather) :] * tail_signs
        return out

    def free_memory(self) -> None:
        """Drop the index arrays; the next projection draws them again from the same seed."""
        self.blocks = None
