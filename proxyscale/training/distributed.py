"""Data-parallel training with PyTorch DDP, launched through ``torchrun``.

A training job asks for ``processes`` in its rule group's resources. With more than one, the job's
entry script starts itself again under ``torchrun --standalone`` (:func:`relaunch`, called by
:func:`proxyscale.runner.run_job`); each process joins the group (:func:`join`: NCCL on GPUs, one GPU
per process, gloo on CPU), and the training loops split every global batch between the processes.

The global batch stays the config's ``batch_size`` whatever the process count: each process takes its
contiguous share of the batch's rows (:meth:`Group.share`) and divides its summed loss by the global
batch's count of loss terms over the process count (:meth:`Group.loss_divisor`), so DDP's average of
the gradients is the gradient of the global batch's mean loss. One process and several train the
same model up to float rounding. Only rank 0 writes outputs (:attr:`Group.is_main`).

Collectives run on the device of the group's backend (:attr:`Group.device`): NCCL only reduces CUDA
tensors, gloo CPU ones.

torch is imported where it is used: every job's runner imports this module, and jobs that never
train (data preparation, reports) should not pay for loading torch.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from proxyscale.errors import ConfigError

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Group:
    """This process's place in the training group; ``Group()`` is a single process."""

    rank: int = 0
    world: int = 1
    device: str = "cpu"  # where the backend's collectives take their tensors (cuda:LOCAL_RANK for NCCL)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def share(self, rows: int) -> slice:
        """This rank's contiguous rows of a global batch of ``rows`` (sizes differ by at most one)."""
        bounds = np.linspace(0, rows, self.world + 1).round().astype(int)
        return slice(int(bounds[self.rank]), int(bounds[self.rank + 1]))

    def loss_divisor(self, count: int) -> float:
        """What this rank divides its summed loss by so that DDP's gradient average is the mean over the
        global batch's ``count`` loss terms (tokens, examples)."""
        return count / self.world

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """Element-wise sum of a per-rank tensor over the group (the tensor itself for one process), on
        the tensor's own device; the reduction runs on the backend's device."""
        if self.world == 1:
            return values
        import torch

        reduced = values.detach().to(device=self.device, dtype=torch.float64)
        torch.distributed.all_reduce(reduced)
        return reduced.to(values.device)

    def mean(self, value: float | torch.Tensor) -> float:
        """Average of a per-rank scalar over the group (the value itself for one process)."""
        if self.world == 1:
            return float(value)
        import torch

        return float(self.sum(torch.as_tensor(value, dtype=torch.float64)).item()) / self.world

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """The model DDP-wrapped for a group of several processes, else as it is."""
        if self.world == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, gradient_as_bucket_view=True
        )

    def no_sync(self, trained: torch.nn.Module, sync: bool):
        """Context for one micro-batch's backward: DDP's gradient all-reduce only when ``sync`` (the
        last micro-batch of a step); a plain context for one process."""
        if self.world == 1 or sync:
            return contextlib.nullcontext()
        return trained.no_sync()


SINGLE = Group()  # one process: the default of every training loop


def launched() -> bool:
    """Whether this process was started by torchrun."""
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def join(device: torch.device) -> tuple[Group, torch.device]:
    """Join the torchrun group (if launched by one) and this process's device: ``cuda:LOCAL_RANK`` on GPUs."""
    if not launched() or int(os.environ["WORLD_SIZE"]) == 1:
        return SINGLE, device
    import torch

    rank, world, local = (int(os.environ[k]) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    if device.type == "cuda":
        if local >= torch.cuda.device_count():
            raise ConfigError(f"{world} training processes but {torch.cuda.device_count()} GPUs on this node")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Group(rank, world, str(device) if device.type == "cuda" else "cpu"), device


def leave() -> None:
    """Leave the process group, if this process joined one."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def relaunch(processes: int, script: str, stdout, stderr) -> int:
    """Run ``script`` again in ``processes`` processes under torchrun (one node); its exit status."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={processes}",
        script,
    ]
    return subprocess.run(command, stdout=stdout, stderr=stderr, check=False).returncode
