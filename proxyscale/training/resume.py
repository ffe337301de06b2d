"""Resuming a training job that was killed before it finished (a cluster's time limit, preemption,
``kill -9``): its full state is saved as it goes, and the same job run again continues from there.

A job's state file lives outside its declared outputs (Snakemake deletes those when a job fails), at
``results/resume/{rule}/{wildcards}.{key}.pt``, where the key hashes everything that determines the
run: the rule, its wildcards and params, every input file's path, size and modification time, and
the source of this package. Run again unchanged, the job finds its file and continues; run with a
changed config, input or code, it finds none under its new key, removes the stale one and starts
fresh. The files go when the job succeeds (:func:`clear_jobs`).

The training loops call :meth:`Resume.poll` after every step. It reads host-side flags only (the
clock, and whether a stop signal arrived), so it never waits for the device. It saves the state once
``every_seconds`` have passed since the last save (config ``resume_every_minutes``, read from the config
rather than params: it changes no result, so changing it re-runs nothing), and at once after SIGTERM or
SIGUSR1 (SLURM's signal at the time limit, or ``--signal`` ahead of it): at the end of the step during
which the signal arrived, after which the job stops with one line saying it will resume. In a group of
processes the decision is taken together through a host-side group (any rank's signal or clock), rank
0 writes and the others wait for it. Saving is atomic, so a kill during a save leaves the previous state.
A job of several processes gets the signal through its runner and torchrun
(:func:`proxyscale.training.distributed.relaunch`).

Everything a run's remaining steps depend on is in the state (weights, optimiser moments and step
counts, the step, the data sampler's generator state, the loss accumulators and the loss curve), so
a resumed run ends with the same weights, bit for bit, as one that was never interrupted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import torch

from proxyscale.artifacts import load_torch
from proxyscale.errors import ProxyscaleError
from proxyscale.io import atomic_path
from proxyscale.layout import RESULTS
from proxyscale.training.distributed import SINGLE, Group

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
PACKAGE = Path(__file__).resolve().parents[1]
_received: list[int] = []  # the stop signals this process has received
_stems: set[Path] = set()  # the jobs this process made state files for (Resume.for_job)


class Preempted(ProxyscaleError):
    """The job was asked to stop (SIGTERM, SIGUSR1) and saved its state to resume from."""


def _note_signal(signum, frame) -> None:
    _received.append(signum)


def code_hash() -> str:
    """Hash of this package's source: a resumed run must continue the same computation."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*.py")):
        digest.update(path.relative_to(PACKAGE).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def job_key(rule: str, wildcards: dict, params: dict, inputs: list[str]) -> str:
    """What determines a job's run: rule, wildcards, params, inputs (path, size, mtime) and code."""
    files = []
    for path in inputs:
        stat = os.stat(path)
        files.append([str(path), stat.st_size, stat.st_mtime_ns])
    text = json.dumps([rule, wildcards, params, files, code_hash()], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def job_stem(rule: str, wildcards: dict, root: str | Path = RESULTS) -> Path:
    """``results/resume/{rule}/{wildcards}``: the part of a job's state files that names the job."""
    name = "_".join(f"{k}-{v}" for k, v in sorted(wildcards.items())) or "job"
    return Path(root) / "resume" / rule / name


def _job_fields(smk) -> tuple[str, dict, dict, list[str]]:
    wildcards = {k: str(v) for k, v in smk.wildcards.items()}
    return smk.rule, wildcards, dict(smk.params.items()), [str(p) for p in smk.input]


def clear_jobs() -> None:
    """Remove every state file of the jobs this process opened states for (the job succeeded)."""
    for stem in _stems:
        for path in stem.parent.glob(f"{stem.name}.*.pt"):
            path.unlink(missing_ok=True)


class Resume:
    """Where one training run saves its state, and when. ``Resume(None)`` never saves (library use)."""

    def __init__(self, path: str | Path | None, every_seconds: float = 1800.0, group: Group = SINGLE):
        self.path = None if path is None else Path(path)
        self.every = every_seconds
        self.group = group
        self.last = time.monotonic()
        if self.path is not None:
            for signum in STOP_SIGNALS:
                signal.signal(signum, _note_signal)

    @classmethod
    def for_job(cls, smk, group: Group = SINGLE, tag: str = "") -> Resume:
        """The state file of this Snakemake job (``tag`` names one of several runs in a job); state files
        the job left under another key (a changed config, input or code) are removed."""
        rule, wildcards, params, inputs = _job_fields(smk)
        stem = job_stem(rule, wildcards)
        key = job_key(rule, wildcards, params, inputs)
        _stems.add(stem)
        if group.is_main:
            for stale in stem.parent.glob(f"{stem.name}.*.pt"):
                if not stale.name.startswith(f"{stem.name}.{key}."):
                    log.info("removing %s: left by a run with another config, input or code", stale)
                    stale.unlink(missing_ok=True)
        every = float(smk.config.get("resume_every_minutes", 30)) * 60
        return cls(stem.parent / f"{stem.name}.{key}.{tag or 'run'}.pt", every, group)

    def load(self) -> dict | None:
        """The saved state, or None when there is none: a fresh start. Its tensors are on the CPU, whatever
        the run's device: the training loops copy them into the live model, optimiser and accumulators and
        drop the state, so a resumed run holds on the GPU exactly what a fresh run holds (the state of a
        760m run is about 8.5 GiB more than its memory model counts)."""
        if self.path is None or not self.path.is_file():
            return None
        state = load_torch(self.path, "cpu", mmap=True)  # the ranks of a node share the file's pages
        log.info("resuming from %s (step %s)", self.path, state.get("step"))
        return state

    def poll(self, step: int, state: Callable[[int], dict]) -> None:
        """After ``step`` steps: save ``state(step)`` when due or asked to stop; after a stop signal, raise
        :class:`Preempted` once the state is saved."""
        if self.path is None:
            return
        due, stop = self.group.agree([time.monotonic() - self.last >= self.every, bool(_received)])
        if due or stop:
            self.save(state(step))
        if stop:
            names = sorted({signal.Signals(s).name for s in _received}) or ["a signal on another rank"]
            raise Preempted(
                f"stopped by {', '.join(names)} at step {step}; its state is saved in {self.path}: "
                "run the job again to resume from there"
            )

    def save(self, state: dict) -> None:
        """Write ``state`` atomically (rank 0); the other ranks wait until it is written."""
        if self.group.is_main:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(self.path) as tmp:
                torch.save(state, tmp)
            log.info("saved training state at step %s to %s", state.get("step"), self.path)
        self.group.barrier()  # the host-side group's: no NCCL timeout while rank 0 writes
        self.last = time.monotonic()


NEVER = Resume(None)
