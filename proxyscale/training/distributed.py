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
import ctypes
import os
import signal
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
    host: object = None  # a gloo process group for host-side agreement (None: the default group, gloo on CPU)

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

    def gather(self, value: torch.Tensor) -> torch.Tensor:
        """Every rank's ``value`` stacked in rank order, (world, ...) on the tensor's own device: what a
        saved state keeps of a per-rank accumulator, so each rank restores its own."""
        import torch

        if self.world == 1:
            return value.detach().clone()[None]
        local = value.detach().to(self.device)
        parts = [torch.empty_like(local) for _ in range(self.world)]
        torch.distributed.all_gather(parts, local)
        return torch.stack(parts).to(value.device)

    def barrier(self) -> None:
        """Wait until every rank is here, through the host-side (gloo) group, whose timeout (30 minutes)
        outlasts a slow write (NCCL's watchdog ends a collective after 10)."""
        if self.world > 1:
            import torch

            torch.distributed.barrier(group=self.host)

    def restored(self, values: torch.Tensor) -> torch.Tensor:
        """This rank's share of a per-rank accumulator saved as :meth:`gather` gave it. Saved by a group of
        another size, rank 0 takes the whole sum, rescaled so that the group's mean (what the loops read)
        is the same, and the others take nothing."""
        if len(values) == self.world:
            return values[self.rank]
        return values.sum(0) * (self.world / len(values)) if self.rank == 0 else values[0] * 0

    def agree(self, flags: list[bool]) -> list[bool]:
        """Each flag true when it is true on any rank, agreed through the host-side (gloo) group: no
        device sync, so the training loops can ask every step."""
        if self.world == 1:
            return list(flags)
        import torch

        votes = torch.tensor([float(f) for f in flags], dtype=torch.float64)
        torch.distributed.all_reduce(votes, group=self.host)
        return [bool(v > 0) for v in votes.tolist()]

    def mean(self, value: float | torch.Tensor) -> float:
        """Average of a per-rank scalar over the group (the value itself for one process)."""
        if self.world == 1:
            return float(value)
        import torch

        return float(self.sum(torch.as_tensor(value, dtype=torch.float64)).item()) / self.world

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """The model DDP-wrapped for a group of several processes, else as it is.

        Gradients are views of DDP's communication buckets (``gradient_as_bucket_view``), so a process
        holds one copy of them; the training loop zeroes them in place rather than dropping them, since a
        gradient set to None comes back from a ``no_sync`` backward as a tensor of its own, beside the
        buckets. Buffers are not broadcast: every rank builds the same ones (ALiBi's bias), and the models
        here have no running statistics."""
        if self.world == 1:
            return model
        import inspect

        from torch.nn.parallel import DistributedDataParallel

        newer = "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters  # deprecates the other
        return DistributedDataParallel(
            model,
            device_ids=[device.index] if device.type == "cuda" else None,
            gradient_as_bucket_view=True,
            **({"forward_sync_buffers": False} if newer else {"broadcast_buffers": False}),
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
    cuda = device.type == "cuda"
    host = torch.distributed.new_group(backend="gloo") if cuda else None  # NCCL reduces only CUDA tensors
    return Group(rank, world, str(device) if cuda else "cpu", host), device


def leave() -> None:
    """Leave the process group, if this process joined one."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


FORWARDED_SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1")
"""What a data-parallel job passes on to its ranks: torchrun's own four and SIGUSR1, SLURM's ``--signal``
ahead of the time limit (torchrun 2.13 forwards only the four unless told)."""
SHUTDOWN_SECONDS = 300
"""How long torchrun lets the ranks save their state after a forwarded signal before it kills them
(its default, 30 s, is shorter than writing a 760m run's state to a shared filesystem may take)."""


def _parent_death_signal():
    """A function for the child between fork and exec that asks Linux to send it SIGTERM when its parent
    dies (prctl PR_SET_PDEATHSIG), looked up before the fork (no loading of libraries in the child); None
    where there is no prctl."""
    try:
        prctl = ctypes.CDLL(None).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(1, signal.SIGTERM)


TORCHRUN = """
import runpy, signal, sys
from torch.distributed.elastic.multiprocessing import api
names = sys.argv.pop(1).split(",")
first = api._terminate_process_handler
def once(signum, frame):
    for name in names:
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    first(signum, frame)
api._terminate_process_handler = once
runpy.run_module("torch.distributed.run", run_name="__main__", alter_sys=True)
"""
"""torchrun, acting on the first stop signal only: under SLURM every process of a job gets the signal, and
the runner passes it on too, and a second signal during torchrun's wait for the ranks would make it stop
waiting and exit while they save (the ranks themselves get every signal and act on the first)."""


def relaunch(processes: int, script: str, stdout, stderr) -> tuple[int, list[str]]:
    """Run ``script`` again in ``processes`` processes under torchrun (one node); its exit status and the
    stop signals this process passed on to it.

    torchrun runs in a session of its own, so a signal sent to the job's whole process group (SLURM's)
    reaches it through here, as does one sent to this process alone: this process forwards
    :data:`FORWARDED_SIGNALS` to it, and torchrun (:data:`TORCHRUN`) to every rank, which saves its state
    at the end of the step and stops (:mod:`proxyscale.training.resume`). torchrun gets SIGTERM if this
    process dies."""
    signals = ",".join(FORWARDED_SIGNALS)
    command = [sys.executable, "-c", TORCHRUN, signals, "--standalone", f"--nproc-per-node={processes}",
               f"--signals-to-handle={signals}", f"--shutdown-timeout={SHUTDOWN_SECONDS}", script]  # fmt: skip
    child = subprocess.Popen(
        command, stdout=stdout, stderr=stderr, start_new_session=True, preexec_fn=_parent_death_signal()
    )
    received: list[str] = []

    def forward(signum, frame) -> None:
        received.append(signal.Signals(signum).name)
        child.send_signal(signum)

    previous = {}
    for name in FORWARDED_SIGNALS:
        previous[name] = signal.signal(getattr(signal, name), forward)
    try:
        return child.wait(), received
    finally:
        for name, handler in previous.items():
            signal.signal(getattr(signal, name), handler)
