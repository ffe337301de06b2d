"""TRAK stores: one per checkpoint, built a batch at a time, resumable, and scored in row chunks.

TRAK (Park et al. 2023; the paper's appendix A.2) attributes a target's output to the training
examples with ``Phi (Phi^T Phi + lambda I)^-1 phi(target)``, where ``Phi`` holds one projected
per-example gradient per training example. This module computes it with traker's pieces (its
per-example gradient computer, its projectors or :mod:`proxyscale.datamodels.sjlt`, its model output
functions) but keeps every array on disk and streams through it, so no job ever holds ``Phi`` (at the
paper's scale, 14.8M examples x 15,360 dimensions: 909 GB in fp32) or the score matrix in memory:

- :func:`featurize` reads the training examples a batch at a time, computes their per-example
  gradients in micro-batches (``micro_batch_size`` examples per vectorised call, the memory knob),
  projects them, divides by sqrt(p) as traker does, and writes the rows of ``grads.npy`` (n x k, in
  ``store_dtype``) and ``q.npy`` (the out-to-loss term Q of every example) in place. Progress is
  recorded after every batch: a killed job resumes where it stopped, in the work directory, which a
  fingerprint of the checkpoint and settings guards. Finalizing accumulates ``Phi^T Phi`` over row
  blocks, inverts it (with ``lambda_reg``), and divides the inverse by its mean absolute entry, as
  traker's ``finalize_features`` does, into ``xtx_inv.npy`` (k x k).
- :func:`score` projects the targets' gradients the same way (k values each), averages them within
  each group when asked (the selection experiment keeps one mean target gradient per target task, as
  the paper does: DsDm needs only each task's mean weight), and writes ``Phi_block (Phi^T Phi)^-1 G^T``
  for one block of training rows at a time into a scores ``.npy`` (n x targets or n x groups).

The work directory becomes the store directory (:func:`publish`) only after the job's scores are
written: a scoring failure leaves the finished, finalized work directory in place, and the rerun
only scores.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from proxyscale.artifacts import NpyRows, load_json, load_npy
from proxyscale.datamodels.conditioning import MAX_FRACTION
from proxyscale.datamodels.projectors import effective_proj_dim, make_projector
from proxyscale.device import Prefetch, pinned
from proxyscale.errors import ConfigError, DataError
from proxyscale.io import RowFile, atomic_path, npy_writer, save_json
from proxyscale.models import built_parameters

MODEL_ID = 0
SUMMARY = "proxyscale.json"
PROGRESS = "progress.json"
STAMP = "proxyscale.fingerprint"
ROW_BLOCK_BYTES = 256 * 2**20  # rows of Phi read at once when finalizing and scoring
log = logging.getLogger(__name__)


def inputs_fingerprint(paths, settings: dict) -> str:
    """What a resumable work directory must match: the files' names, sizes and modification times, and
    the settings (a changed checkpoint or dataset is a new file; nothing is read, whatever its size)."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for path in paths:
        for file in sorted(Path(path).rglob("*")) if Path(path).is_dir() else [Path(path)]:
            stat = file.stat()
            digest.update(f"{file.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()


def _gradient_computer(model, modelout, device):
    from trak.gradient_computers import FunctionalGradientComputer

    return FunctionalGradientComputer(model, modelout, built_parameters(model), torch.float32, device)


class Projection:
    """The per-example gradient of a model's output, projected as traker does (divided by sqrt(p))."""

    def __init__(self, model, modelout, proj_dim: int, seed: int, device, micro_batch: int, projector: str):
        self.model = model.to(device).eval()
        self.modelout, self.device, self.micro = modelout, device, micro_batch
        self.proj_dim = effective_proj_dim(model, proj_dim)
        self.projector = make_projector(model, self.proj_dim, seed, device, micro_batch, projector)
        self.computer = _gradient_computer(self.model, modelout, device)
        self.normalize = math.sqrt(built_parameters(model))

    def __call__(self, batch: tuple) -> tuple[np.ndarray, np.ndarray]:
        """Projected gradients (rows, k) and Q (rows,) of a batch, ``micro_batch`` examples at a time."""
        grads, qs = [], []
        for start in range(0, len(batch[0]), self.micro):
            part = tuple(t[start : start + self.micro] for t in batch)
            g = self.computer.compute_per_sample_grad(batch=part)
            grads.append((self.projector.project(g, model_id=MODEL_ID) / self.normalize).float().cpu().numpy())
            qs.append(self.computer.compute_loss_grad(part).reshape(-1).float().cpu().numpy())
        return np.concatenate(grads), np.concatenate(qs)


def featurize(
    model: torch.nn.Module,
    task,
    examples,
    batch_size: int,
    work_dir: str | Path,
    proj_dim: int,
    device: torch.device,
    seed: int = 0,
    lambda_reg: float = 0.0,
    projector: str = "sjlt",
    fingerprint: str = "",
    micro_batch_size: int | None = None,
    store_dtype: str = "float32",
    on_batch: Callable[[int], None] | None = None,
) -> dict:
    """Build (or finish) the finalized TRAK store of one checkpoint in ``work_dir`` (module docstring):
    every training example of ``examples`` featurized, ``batch_size`` rows read and written at a time,
    ``micro_batch_size`` (default: the batch) per gradient computation. ``on_batch`` is called after each
    computed batch (tests use it to interrupt the job). A work directory left with another
    ``fingerprint`` is discarded. Returns the store's summary, which is also written to it."""
    start = time.perf_counter()
    work_dir = Path(work_dir)
    stamp = work_dir / STAMP
    if work_dir.exists() and (not stamp.is_file() or stamp.read_text() != fingerprint):
        log.info("discarding %s: left by a different checkpoint or settings", work_dir)
        shutil.rmtree(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    stamp.write_text(fingerprint)
    if (work_dir / SUMMARY).is_file():
        log.info("%s is finished: nothing to featurize", work_dir)
        return load_json(work_dir / SUMMARY)
    n = len(examples)
    micro = min(micro_batch_size or batch_size, batch_size)
    project = Projection(model, task.modelout, proj_dim, seed, device, micro, projector)
    k = project.proj_dim
    grads = RowFile(work_dir / "grads.npy", (n, k), store_dtype)
    qs = RowFile(work_dir / "q.npy", (n,), np.float32)
    done = load_json(work_dir / PROGRESS)["rows"] if (work_dir / PROGRESS).is_file() else 0
    resumed, computed = done > 0, 0
    starts = range(done, n, batch_size)

    def read(first: int) -> tuple:  # a batch's rows, read and laid out on the host on the prefetch thread
        return pinned(task.host_batch(*examples.take(np.arange(first, min(n, first + batch_size)))), device)

    prefetched = Prefetch(read, starts, ahead=device.type == "cuda")  # a CPU computes and reads alike
    bar = tqdm(starts, desc=f"featurize {work_dir.name}", mininterval=5, ascii=True)
    for first, host in zip(bar, prefetched):
        rows = np.arange(first, min(n, first + batch_size))
        g, q = project(task.device_batch(host, device))
        grads.write(first, g)
        qs.write(first, q)
        save_json({"rows": int(rows[-1]) + 1}, work_dir / PROGRESS)
        computed += 1
        if on_batch is not None:
            on_batch(computed)
    finalize(work_dir, lambda_reg, device)
    summary = {
        "n_train": n,
        "proj_dim": k,
        "grad_dim": built_parameters(model),
        "projector": type(project.projector).__name__,
        "projector_choice": projector,
        "projector_batch": micro,
        "store_dtype": store_dtype,
        "batches": len(range(0, n, batch_size)),
        "batches_computed": computed,
        "resumed": resumed,
        "input_wait_seconds": prefetched.waited,
        "lambda_reg": lambda_reg,
        "seed": seed,
        "wall_seconds": time.perf_counter() - start,
    }
    save_json(summary, work_dir / SUMMARY)
    return summary


def _block_rows(k: int, itemsize: int = 4) -> int:
    return max(1, ROW_BLOCK_BYTES // (k * itemsize))


def finalize(work_dir: Path, lambda_reg: float, device) -> None:
    """``(Phi^T Phi + lambda I)^-1`` over the store's rows, divided by its mean absolute entry (traker's
    normalisation), into ``xtx_inv.npy``; Phi^T Phi accumulates in fp32 over blocks of rows, on ``device``."""
    phi = NpyRows(work_dir / "grads.npy")
    k = phi.shape[1]
    xtx = torch.zeros(k, k, dtype=torch.float32, device=device)
    for _, block in phi.blocks(_block_rows(k)):
        b = torch.from_numpy(block.astype(np.float32, copy=False)).to(device)
        xtx += b.T @ b
    try:
        inv = torch.linalg.inv(xtx + lambda_reg * torch.eye(k, device=device))
    except torch.linalg.LinAlgError:
        raise ConfigError(
            f"trak.proj_dim: Phi^T Phi of {work_dir} is singular ({k} projected dimensions, {len(phi)} training "
            f"examples, lambda_reg {lambda_reg}): the gradients span fewer dimensions than the projection; use at "
            f"most {int(MAX_FRACTION * len(phi))} (a fifth of the training examples) or a positive lambda_reg"
        ) from None
    inv /= inv.abs().mean()
    with atomic_path(work_dir / "xtx_inv.npy") as tmp:
        np.save(tmp, inv.cpu().numpy())


def store_summary(store_dir: str | Path) -> dict:
    """What :func:`featurize` recorded: sizes, projector kind, seed and batch, wall time (and the scoring
    time, once scored)."""
    path = Path(store_dir) / SUMMARY
    if not path.is_file():
        raise DataError(f"{store_dir}: not a finished proxyscale TRAK store (no {SUMMARY})")
    summary = load_json(path)
    if "store_dtype" not in summary:
        raise DataError(f"{store_dir}: built by an older proxyscale (no store_dtype); delete it to rebuild it")
    return summary


def load_q(store_dir: str | Path) -> np.ndarray:
    """The out-to-loss term Q (n_train,) of a finished store."""
    return np.asarray(load_npy(Path(store_dir) / "q.npy", mmap=True), dtype=np.float32)


def target_gradients(model, task, targets, batch_size: int, store_dir: Path, device) -> np.ndarray:
    """The targets' projected gradients (n_targets, k), with the store's projector (kind, seed, size and
    micro-batch); a store built with another kind of projector is refused."""
    info = store_summary(store_dir)
    project = Projection(
        model, task.modelout, info["proj_dim"], info["seed"], device, info["projector_batch"], info["projector_choice"]
    )
    here = type(project.projector).__name__
    if here != info["projector"]:
        raise DataError(
            f"{store_dir}: built with {info['projector']}, but scoring on {device} would project with {here}; "
            "score on the kind of device that featurized, or delete the store to rebuild it"
        )
    if project.proj_dim != info["proj_dim"]:
        raise DataError(f"{store_dir}: store has projection size {info['proj_dim']}, model gives {project.proj_dim}")
    rows = [
        project(task.to_batch(*targets.take(np.arange(s, min(len(targets), s + batch_size))), device))[0]
        for s in range(0, len(targets), batch_size)
    ]
    return np.concatenate(rows)


def score(
    model: torch.nn.Module,
    task,
    targets,
    batch_size: int,
    store_dir: str | Path,
    out: str | Path,
    device,
    groups: np.ndarray | None = None,
) -> dict:
    """Raw TRAK scores of one checkpoint into the ``.npy`` ``out``: (n_train, n_targets), or with ``groups``
    (a group index per target) (n_train, n_groups), each column the scores of its group's mean target
    gradient (the mean of its targets' scores). Reads the store a block of rows at a time and leaves it
    unchanged; returns the scores' shape and wall time."""
    start = time.perf_counter()
    store_dir = Path(store_dir)
    g = target_gradients(model, task, targets, batch_size, store_dir, device)
    if groups is not None:
        groups = np.asarray(groups)
        g = np.stack([g[groups == j].mean(axis=0) for j in range(int(groups.max()) + 1)])
    xtx_inv = torch.from_numpy(load_npy(store_dir / "xtx_inv.npy")).to(device)
    g_t = torch.from_numpy(g.T.astype(np.float32)).to(device)
    phi = NpyRows(store_dir / "grads.npy")
    with npy_writer(out, np.float32, (g.shape[0],)) as append:
        for _, block in phi.blocks(_block_rows(phi.shape[1])):
            features = torch.from_numpy(block.astype(np.float32, copy=False)).to(device) @ xtx_inv
            append((features @ g_t).cpu().numpy())
    return {"shape": [len(phi), g.shape[0]], "score_seconds": time.perf_counter() - start}


def publish(work_dir: str | Path, store_dir: str | Path, scoring: dict) -> None:
    """Make the finished work directory the store (its summary gains the scoring time)."""
    work_dir, store_dir = Path(work_dir), Path(store_dir)
    save_json({**load_json(work_dir / SUMMARY), **scoring}, work_dir / SUMMARY)
    if store_dir.exists():
        shutil.rmtree(store_dir)
    store_dir.parent.mkdir(parents=True, exist_ok=True)
    work_dir.rename(store_dir)
    with contextlib.suppress(OSError):  # drop the work directory's parent once it is empty
        work_dir.parent.rmdir()
