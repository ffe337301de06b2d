"""TRAK stores: featurized in shards (each its own job, resumable), gathered once, scored in row chunks.

TRAK (Park et al. 2023; the paper's appendix A.2) attributes a target's output to the training
examples with ``Phi (Phi^T Phi + lambda I)^-1 phi(target)``, where ``Phi`` holds one projected
per-example gradient per training example. This module computes it with traker's pieces (its
per-example gradient computer, its projectors or :mod:`proxyscale.datamodels.sjlt`, its model output
functions) but keeps every array on disk and streams through it, so no job ever holds ``Phi`` (at the
paper's scale, 14.8M examples x 15,360 dimensions: 909 GB in fp32) or the score matrix in memory, and
the featurizing of one checkpoint can be split over many jobs (``trak.shards``), each fitting a time limit:

- :func:`featurize` reads one contiguous range of the training examples (a shard, :func:`shard_rows`) a
  batch at a time, computes their per-example gradients in micro-batches (``micro_batch_size``
  examples per vectorised call, the memory knob), projects them, divides by sqrt(p) as traker does,
  and writes the rows of ``grads.npy`` (rows x k, in ``store_dtype``) and, when asked, ``q.npy`` (the
  out-to-loss term Q of every example; its forward pass is skipped otherwise) in place. Progress is
  recorded after every batch: a killed job resumes where it stopped, in the work directory, which a
  fingerprint of the checkpoint and settings guards. It ends with the shard's partial ``Phi^T Phi``
  (fp32, summed over row blocks) in ``xtx.npy``.
- :func:`finalize` sums the shards' partials, inverts (with ``lambda_reg``) and divides the inverse by
  its mean absolute entry, as traker's ``finalize_features`` does; exact gradients (a model with no more
  parameters than k) are inverted on the span they cover (:func:`span_inverse`).
- :func:`score` projects the targets' gradients the same way (k values each), averages them within each
  group when asked (the selection experiment keeps one mean target gradient per target task, as the
  paper does: DsDm needs only each task's mean weight), multiplies them by the inverse once, and writes
  ``Phi_block (Phi^T Phi)^-1 G^T`` a block of training rows at a time, shard after shard, into a scores
  ``.npy`` (n x targets or n x groups).
- :func:`write_store` keeps what readers need of a checkpoint, small: the summary (with every shard's
  wall time) and Q. The shards' projected gradients are work files of the gather.

A shard's work directory becomes its output (:func:`publish`) only once featurized: a failed job leaves
the work directory in place, and the rerun resumes there.
"""

from __future__ import annotations

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
from proxyscale.datamodels.projectors import ExactGradients, effective_proj_dim, make_projector
from proxyscale.device import Prefetch, full_fp32, pinned
from proxyscale.errors import ConfigError, DataError
from proxyscale.io import RowFile, atomic_dir, atomic_path, npy_writer, save_json
from proxyscale.layout import parse_shard
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


def shard_rows(n: int, shard: int, shards: int) -> range:
    """The training rows of shard ``shard`` of ``shards``: contiguous, in order, sizes differing by one at most."""
    if not 0 <= shard < shards:
        raise ValueError(f"shard {shard} of {shards} does not exist")
    return range(shard * n // shards, (shard + 1) * n // shards)


def discard_other_shardings(work_dir: str | Path) -> None:
    """Remove the unfinished work of the same checkpoint cut into another number of shards (a changed
    ``trak.shards``, or the runtime ``auto`` sizes them by): it would never be resumed."""
    work_dir = Path(work_dir)
    shards = parse_shard(work_dir.name)[1]
    for other in work_dir.parent.glob("*-of-*"):
        if other.is_dir() and parse_shard(other.name)[1] != shards:
            log.info("removing %s: unfinished work of %s shards, now %d", other, parse_shard(other.name)[1], shards)
            shutil.rmtree(other, ignore_errors=True)


class Projection:
    """The per-example gradient of a model's output, computed in fp32 (no TF32 on a GPU) and projected as
    traker does (divided by sqrt(p)), and the out-to-loss term Q when ``with_q`` (one more forward pass
    per example)."""

    def __init__(
        self, model, modelout, proj_dim: int, seed: int, device, micro_batch: int, projector: str, with_q: bool = True
    ):
        self.model = model.to(device).eval()
        self.modelout, self.device, self.micro, self.with_q = modelout, device, micro_batch, with_q
        self.proj_dim = effective_proj_dim(model, proj_dim)
        self.projector = make_projector(model, self.proj_dim, seed, device, micro_batch, projector)
        self.computer = _gradient_computer(self.model, modelout, device)
        self.normalize = math.sqrt(built_parameters(model))

    def __call__(self, batch: tuple) -> tuple[np.ndarray, np.ndarray | None]:
        """Projected gradients (rows, k) and Q (rows,) or None of a batch, ``micro_batch`` examples at a time."""
        grads, qs = [], []
        for start in range(0, len(batch[0]), self.micro):
            part = tuple(t[start : start + self.micro] for t in batch)
            with full_fp32():  # the summary's gradient_dtype
                g = self.computer.compute_per_sample_grad(batch=part)
            grads.append((self.projector.project(g, model_id=MODEL_ID) / self.normalize).float().cpu().numpy())
            if self.with_q:
                qs.append(self.computer.compute_loss_grad(part).reshape(-1).float().cpu().numpy())
        return np.concatenate(grads), np.concatenate(qs) if self.with_q else None


def featurize(
    model: torch.nn.Module,
    task,
    examples,
    batch_size: int,
    work_dir: str | Path,
    proj_dim: int,
    device: torch.device,
    seed: int = 0,
    projector: str = "sjlt",
    fingerprint: str = "",
    micro_batch_size: int | None = None,
    store_dtype: str = "float32",
    on_batch: Callable[[int], None] | None = None,
    rows: range | None = None,
    with_q: bool = True,
) -> dict:
    """Featurize (or finish featurizing) the training ``rows`` of ``examples`` (default all: one shard)
    into ``work_dir`` (module docstring): ``batch_size`` rows read and written at a time,
    ``micro_batch_size`` (default: the batch) per gradient computation, Q computed when ``with_q``.
    ``on_batch`` is called after each computed batch (tests use it to interrupt the job). A work
    directory left with another ``fingerprint`` is discarded. Returns the shard's summary, which is also
    written to it."""
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
    rows = range(len(examples)) if rows is None else rows
    n = len(rows)
    micro = min(micro_batch_size or batch_size, batch_size)
    project = Projection(model, task.modelout, proj_dim, seed, device, micro, projector, with_q)
    k = project.proj_dim
    grads = RowFile(work_dir / "grads.npy", (n, k), store_dtype)
    qs = RowFile(work_dir / "q.npy", (n,), np.float32) if with_q else None
    done = load_json(work_dir / PROGRESS)["rows"] if (work_dir / PROGRESS).is_file() else 0
    resumed, computed = done > 0, 0
    starts = range(done, n, batch_size)

    def read(first: int) -> tuple:  # a batch's rows, read and laid out on the host on the prefetch thread
        batch = examples.take(np.arange(rows.start + first, rows.start + min(n, first + batch_size)))
        return pinned(task.host_batch(*batch), device)

    prefetched = Prefetch(read, starts, ahead=device.type == "cuda")  # a CPU computes and reads alike
    bar = tqdm(starts, desc=f"featurize {work_dir.name}", mininterval=5, ascii=True)
    for first, host in zip(bar, prefetched):
        g, q = project(task.device_batch(host, device))
        grads.write(first, g)
        if qs is not None:
            qs.write(first, q)
        save_json({"rows": first + len(g)}, work_dir / PROGRESS)
        computed += 1
        if on_batch is not None:
            on_batch(computed)
    _partial_xtx(work_dir, device)
    summary = {
        "n_train": len(examples),
        "rows": [rows.start, rows.stop],
        "proj_dim": k,
        "grad_dim": built_parameters(model),
        "projector": type(project.projector).__name__,
        "projector_choice": projector,
        "projector_batch": micro,
        "store_dtype": store_dtype,
        "gradient_dtype": "float32",
        "q": with_q,
        "batches": len(range(0, n, batch_size)),
        "batches_computed": computed,
        "resumed": resumed,
        "input_wait_seconds": prefetched.waited,
        "seed": seed,
        "wall_seconds": time.perf_counter() - start,
    }
    save_json(summary, work_dir / SUMMARY)
    return summary


def _block_rows(k: int, itemsize: int = 4) -> int:
    return max(1, ROW_BLOCK_BYTES // (k * itemsize))


def _partial_xtx(work_dir: Path, device) -> None:
    """The shard's ``Phi^T Phi`` into ``xtx.npy`` (stored in fp32), computed in fp64 over blocks of its rows
    on ``device``: with k near the number of rows, Phi^T Phi is ill-conditioned and its inverse magnifies
    fp32's summation errors, which would make the scores depend on how the rows are sharded (at k 2,048 for
    3,000 images, fp32 moved them by 3e-4 of their range between 1 and 4 shards). It costs 2 rows k^2 fp64
    FLOPs, small beside featurizing the rows."""
    phi = NpyRows(work_dir / "grads.npy")
    k = phi.shape[1]
    xtx = torch.zeros(k, k, dtype=torch.float64, device=device)
    for _, block in phi.blocks(_block_rows(k, 8)):
        b = torch.from_numpy(block.astype(np.float64)).to(device)
        xtx += b.T @ b
    with atomic_path(work_dir / "xtx.npy") as tmp:
        np.save(tmp, xtx.float().cpu().numpy())


def span_inverse(xtx: torch.Tensor) -> tuple[torch.Tensor, int]:
    """The inverse of the symmetric ``xtx`` on the span of its eigenvectors that float32 resolves (eigenvalues
    above the largest times k times float32's epsilon: numpy's matrix_rank rule, as the shards store their
    partials in float32), and that span's dimension. Exact gradients (:class:`ExactGradients`) span what the
    model's gradients span, which can be fewer dimensions than its parameters (the weights of an image pixel
    that is constant over the training set all get the same gradient): Phi^T Phi is singular there, and TRAK
    regresses on the span."""
    values, vectors = torch.linalg.eigh(xtx)
    keep = values > values.max() * xtx.shape[0] * torch.finfo(torch.float32).eps
    kept = vectors[:, keep]
    return (kept / values[keep]) @ kept.T, int(keep.sum())


def finalize(shard_dirs: list[Path], lambda_reg: float, device, exact: bool = False) -> tuple[torch.Tensor, int]:
    """``(Phi^T Phi + lambda I)^-1`` of all the shards' rows (the sum of their partials, summed and inverted
    in fp64), divided by its mean absolute entry (traker's normalisation), in fp32 on ``device``, and the
    dimensions it inverts on: all k of a projection, or for ``exact`` gradients their span
    (:func:`span_inverse`)."""
    xtx = sum(torch.from_numpy(load_npy(Path(d) / "xtx.npy")).to(device, torch.float64) for d in shard_dirs)
    k, n = xtx.shape[0], sum(len(NpyRows(Path(d) / "grads.npy")) for d in shard_dirs)
    regularized = xtx + lambda_reg * torch.eye(k, device=device, dtype=torch.float64)
    if exact:
        inv, rank = span_inverse(regularized)
        return (inv / inv.abs().mean()).float(), rank
    try:
        inv = torch.linalg.inv(regularized)
    except torch.linalg.LinAlgError:
        raise ConfigError(
            f"trak.proj_dim: Phi^T Phi of {Path(shard_dirs[0]).parent} is singular ({k} projected dimensions, {n} "
            f"training examples, lambda_reg {lambda_reg}): the gradients span fewer dimensions than the "
            f"projection; use at most {int(MAX_FRACTION * n)} (a fifth of the training examples) or a positive "
            "lambda_reg"
        ) from None
    return (inv / inv.abs().mean()).float(), k


def shard_summaries(shard_dirs: list[Path]) -> list[dict]:
    """The shards' summaries, checked to tile the training rows in order with one projection."""
    infos = [store_summary(d) for d in shard_dirs]
    stops = [0] + [info["rows"][1] for info in infos]
    if [info["rows"][0] for info in infos] != stops[:-1] or stops[-1] != infos[0]["n_train"]:
        raise DataError(f"{Path(shard_dirs[0]).parent}: the shards do not cover the training rows in order")
    if len({(i["proj_dim"], i["seed"], i["projector"]) for i in infos}) != 1:
        raise DataError(f"{Path(shard_dirs[0]).parent}: the shards were projected differently")
    return infos


def store_summary(store_dir: str | Path) -> dict:
    """What a shard's :func:`featurize` recorded (sizes, rows, projector kind, seed and batch, wall time),
    or a checkpoint's store, which :func:`write_store` wrote (the same, each shard's rows and time, and
    the scoring)."""
    path = Path(store_dir) / SUMMARY
    if not path.is_file():
        raise DataError(f"{store_dir}: not a finished proxyscale TRAK store (no {SUMMARY})")
    summary = load_json(path)
    if "store_dtype" not in summary or "q" not in summary:
        raise DataError(f"{store_dir}: built by an older proxyscale (before TRAK shards); delete it to rebuild it")
    return summary


def load_q(store_dir: str | Path) -> np.ndarray:
    """The out-to-loss term Q (n_train,) of a finished store (or shard) that computed it."""
    path = Path(store_dir) / "q.npy"
    if not path.is_file():
        raise DataError(f"{store_dir}: has no Q (featurized without it: trak.q_term false)")
    return np.asarray(load_npy(path, mmap=True), dtype=np.float32)


def target_gradients(model, task, targets, batch_size: int, shard_dir: Path, device) -> np.ndarray:
    """The targets' projected gradients (n_targets, k), with the shard's projector (kind, seed, size and
    micro-batch); a shard built with another kind of projector is refused."""
    info = store_summary(shard_dir)
    project = Projection(
        model, task.modelout, info["proj_dim"], info["seed"], device, info["projector_batch"], info["projector_choice"],
        with_q=False,
    )  # fmt: skip
    here = type(project.projector).__name__
    if here != info["projector"]:
        raise DataError(
            f"{shard_dir}: built with {info['projector']}, but scoring on {device} would project with {here}; "
            "score on the kind of device that featurized, or delete the store to rebuild it"
        )
    if project.proj_dim != info["proj_dim"]:
        raise DataError(f"{shard_dir}: store has projection size {info['proj_dim']}, model gives {project.proj_dim}")
    rows = [
        project(task.to_batch(*targets.take(np.arange(s, min(len(targets), s + batch_size))), device))[0]
        for s in range(0, len(targets), batch_size)
    ]
    return np.concatenate(rows)


def group_means(g: np.ndarray, groups) -> np.ndarray:
    """The mean of the rows of ``g`` in each group (``groups``: a group index per row), (n_groups, k)."""
    groups = np.asarray(groups)
    return np.stack([g[groups == j].mean(axis=0) for j in range(int(groups.max()) + 1)])


def score(
    model: torch.nn.Module,
    task,
    targets,
    batch_size: int,
    shard_dirs: list,
    out: str | Path,
    device,
    groups: np.ndarray | None = None,
    lambda_reg: float = 0.0,
) -> dict:
    """Raw TRAK scores of one checkpoint, featurized in ``shard_dirs`` (in row order), into the ``.npy``
    ``out``: (n_train, n_targets), or with ``groups`` (a group index per target) (n_train, n_groups), each
    column the scores of its group's mean target gradient (the mean of its targets' scores). Reads the
    shards a block of rows at a time and leaves them unchanged; returns the scores' shape, the dimensions the
    inverse spans (:func:`finalize`) and the wall time."""
    start = time.perf_counter()
    shard_dirs = [Path(d) for d in shard_dirs]
    exact = shard_summaries(shard_dirs)[0]["projector"] == ExactGradients.__name__
    g = target_gradients(model, task, targets, batch_size, shard_dirs[0], device)
    if groups is not None:
        g = group_means(g, groups)
    inverse, rank = finalize(shard_dirs, lambda_reg, device, exact)
    weights = inverse @ torch.from_numpy(g.T.astype(np.float32)).to(device)
    n = 0
    with npy_writer(out, np.float32, (g.shape[0],)) as append:
        for shard in shard_dirs:
            phi = NpyRows(shard / "grads.npy")
            for _, block in phi.blocks(_block_rows(phi.shape[1])):
                append((torch.from_numpy(block.astype(np.float32, copy=False)).to(device) @ weights).cpu().numpy())
            n += len(phi)
    return {
        "shape": [n, g.shape[0]],
        "lambda_reg": lambda_reg,
        "rank": rank,
        "score_seconds": time.perf_counter() - start,
    }


def publish(work_dir: str | Path, shard_dir: str | Path) -> None:
    """Make a featurized work directory the shard's output."""
    work_dir, shard_dir = Path(work_dir), Path(shard_dir)
    if shard_dir.exists():
        shutil.rmtree(shard_dir)
    shard_dir.parent.mkdir(parents=True, exist_ok=True)
    work_dir.rename(shard_dir)
    for parent in list(work_dir.parents)[:3]:  # drop its checkpoint's, size's and experiment's once empty
        try:
            parent.rmdir()
        except OSError:
            break


def write_store(shard_dirs: list, store_dir: str | Path, scoring: dict) -> None:
    """The checkpoint's small store, what readers need once it is scored: its summary (the first shard's
    settings, the whole training set, the shards' rows and wall times summed and listed, the scoring)
    and, where computed, Q of every training example in row order. Written whole or not at all."""
    infos = shard_summaries([Path(d) for d in shard_dirs])
    per_shard = ("rows", "wall_seconds", "batches_computed", "resumed", "input_wait_seconds")
    summary = {k: v for k, v in infos[0].items() if k not in per_shard}
    summary |= {
        "shards": [{k: info[k] for k in per_shard} for info in infos],
        "batches": sum(info["batches"] for info in infos),
        "wall_seconds": sum(info["wall_seconds"] for info in infos),
        **scoring,
    }
    store_dir = Path(store_dir)
    with atomic_dir(store_dir) as tmp:
        if summary["q"]:
            with npy_writer(tmp / "q.npy", np.float32) as append:
                for d in shard_dirs:
                    append(np.asarray(load_npy(Path(d) / "q.npy", mmap=True)))
        save_json(summary, tmp / SUMMARY)
