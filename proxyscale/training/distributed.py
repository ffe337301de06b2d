"""Data-parallel training with PyTorch DDP, launched through ``torchrun``.

A training job asks for ``processes`` in its rule group's resources. With more than one, the job's
entry script starts itself again under ``torchrun --standalone`` (:func:`relaunch`, called by
:func:`proxyscale.runner.run_job`); each process joins the group (:func:`join`: NCCL on GPUs, one GPU
per process, gloo on CPU), and the training loops split every global batch between the processes.

The global batch stays the config's ``batch_size`` whatever the process count: each process takes its
contiguous share of the batch's rows (:meth:`Group.share`) and scales its mean loss by its share of
the rows (:meth:`Group.loss_weight`), so DDP's average of the gradients is the gradient of the global
batch's mean loss. One process and several train the same model up to float rounding. Only rank 0
writes outputs (:attr:`Group.is_main`).

torch is imported where it is used: every job's runner imports this module, and jobs that never
train (data preparation, reports) should not pay for loading torch.
"""

from __future__ import annotations

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

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def share(self, rows: int) -> slice:
        """This rank's contiguous rows of a global batch of ``rows`` (sizes differ by at most one)."""
        bounds = np.linspace(0, rows, self.world + 1).round().astype(int)
        return slice(int(bounds[self.rank]), int(bounds[self.rank + 1]))

    def loss_weight(self, rows: int) -> float:
        """Factor on this rank's mean loss so that DDP's gradient average is the global batch mean."""
        local = self.share(rows)
        return self.world * (local.stop - local.start) / rows

    def mean(self, value: float) -> float:
        """Average of a per-rank scalar over the group (the value itself for one process)."""
        if self.world == 1:
            return value
        import torch

        t = torch.tensor([value], dtype=torch.float64)
        torch.distributed.all_reduce(t)
        return float(t.item()) / self.world

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """The model DDP-wrapped for a group of several processes, else as it is."""
        if self.world == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


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
    return Group(rank, world), device


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
