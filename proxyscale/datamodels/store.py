"""TRAK stores with ``traker``: one store per checkpoint, resumable, and per-checkpoint scores.

``featurize`` projects the per-example gradients of one checkpoint on the training set into a traker
store and finalizes it (features ``Phi (Phi^T Phi + lambda I)^-1``). The store is built in a work
directory that survives a killed job: traker marks every featurized example, so a re-run skips the
batches already done. Only a finished store is renamed onto the output directory, so the artifact is
never half-written.

``score`` projects the target examples' gradients with the same projector (a throw-away traker store
whose "training set" is the targets) and returns the raw scores ``features @ target_grads^T`` together
with the out-to-loss term Q of every training example, reading the finished store without changing
it. Whether Q multiplies the scores is the datamodel's choice (see :mod:`proxyscale.datamodels.datamodel`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm
from trak import TRAKer

from proxyscale.artifacts import load_json, load_npy
from proxyscale.datamodels.conditioning import MAX_FRACTION
from proxyscale.datamodels.projectors import effective_proj_dim, make_projector
from proxyscale.errors import ConfigError, DataError

MODEL_ID = 0
log = logging.getLogger(__name__)


def fingerprint(paths: Iterable[str | Path], settings: dict) -> str:
    """Hash of files' bytes and settings: what a resumable work directory must match."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for path in paths:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()


def open_traker(
    model,
    task,
    n_examples: int,
    save_dir: Path,
    proj_dim: int,
    device,
    seed: int,
    lambda_reg: float,
    batch_size: int,
    projector: str,
):
    """A traker over ``save_dir`` projecting with ``projector`` (seed ``seed``) for batches up to ``batch_size``."""
    proj_dim = effective_proj_dim(model, proj_dim)
    return TRAKer(
        model=model,
        task=task,
        train_set_size=n_examples,
        save_dir=str(save_dir),
        load_from_save_dir=True,
        device=str(device),
        projector=make_projector(model, proj_dim, seed, device, batch_size, projector),
        proj_dim=proj_dim,
        use_half_precision=False,
        lambda_reg=lambda_reg,
        logging_level=logging.WARNING,
    )


def _featurize_batches(traker: TRAKer, batches: Iterable[tuple[np.ndarray, tuple]], desc: str, on_batch=None) -> int:
    """Featurize (indices, batch) pairs; returns how many batches needed computing."""
    done = np.asarray(traker.saver.current_store["is_featurized"]).reshape(-1) == 1
    computed = 0
    for inds, batch in tqdm(list(batches), desc=desc, mininterval=5, ascii=True):
        if done[inds].all():
            continue
        traker.featurize(batch=batch, inds=np.asarray(inds))
        computed += 1
        if on_batch is not None:
            on_batch(computed)
    return computed


def featurize(
    model: torch.nn.Module,
    task,
    batches: Callable[[], Iterable[tuple[np.ndarray, tuple]]],
    n_train: int,
    store_dir: str | Path,
    work_dir: str | Path,
    proj_dim: int,
    device: torch.device,
    seed: int = 0,
    lambda_reg: float = 0.0,
    projector: str = "sjlt",
    fingerprint: str = "",
    on_batch: Callable[[int], None] | None = None,
) -> dict:
    """Build the finished TRAK store of one checkpoint at ``store_dir``; resume from ``work_dir``.

    ``batches()`` yields (training-example indices, batch) in a fixed order; ``on_batch`` is called
    after each computed batch (tests use it to interrupt the job). ``fingerprint`` identifies the
    checkpoint and settings: a work directory left by a different one is discarded, not resumed.
    Returns a summary (batches computed, whether it resumed, projection size, wall time).
    """
    start = time.perf_counter()
    store_dir, work_dir = Path(store_dir), Path(work_dir)
    stamp = work_dir / "proxyscale.fingerprint"
    if work_dir.exists() and (not stamp.is_file() or stamp.read_text() != fingerprint):
        log.info("discarding %s: left by a different checkpoint or settings", work_dir)
        shutil.rmtree(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    stamp.write_text(fingerprint)
    model = model.to(device).eval()
    all_batches = list(batches())
    batch_size = max(len(inds) for inds, _ in all_batches)
    traker = open_traker(model, task, n_train, work_dir, proj_dim, device, seed, lambda_reg, batch_size, projector)
    resumed = MODEL_ID in traker.saver.model_ids
    traker.load_checkpoint(model.state_dict(), model_id=MODEL_ID)
    computed = _featurize_batches(traker, all_batches, f"featurize {store_dir.name}", on_batch)
    if not traker.saver.model_ids[MODEL_ID]["is_featurized"]:
        missing = int(n_train - np.asarray(traker.saver.current_store["is_featurized"]).sum())
        raise DataError(f"{store_dir}: {missing} of {n_train} training examples were never featurized")
    try:
        traker.finalize_features(model_ids=[MODEL_ID])
    except torch.linalg.LinAlgError:
        raise ConfigError(
            f"trak.proj_dim: Phi^T Phi of {store_dir} is singular ({traker.proj_dim} projected dimensions, "
            f"{n_train} training examples, lambda_reg {lambda_reg}): the gradients span fewer dimensions than "
            f"the projection; use at most {int(MAX_FRACTION * n_train)} (a fifth of the training examples) or a "
            "positive lambda_reg"
        ) from None
    summary = {
        "n_train": n_train,
        "proj_dim": traker.proj_dim,
        "grad_dim": traker.num_params_for_grad,
        "projector": type(traker.projector).__name__,
        "projector_choice": projector,
        "projector_batch": batch_size,
        "batches": len(all_batches),
        "batches_computed": computed,
        "resumed": bool(resumed),
        "lambda_reg": lambda_reg,
        "seed": seed,
        "wall_seconds": time.perf_counter() - start,
    }
    (work_dir / "proxyscale.json").write_text(json.dumps(summary, indent=2) + "\n")
    del traker
    if store_dir.exists():
        shutil.rmtree(store_dir)
    store_dir.parent.mkdir(parents=True, exist_ok=True)
    work_dir.rename(store_dir)
    with contextlib.suppress(OSError):  # drop the work directory's parent once it is empty
        work_dir.parent.rmdir()
    return summary


def store_summary(store_dir: str | Path) -> dict:
    """What :func:`featurize` recorded: sizes, projector kind, seed and batch, wall time."""
    path = Path(store_dir) / "proxyscale.json"
    if not path.is_file():
        raise DataError(f"{store_dir}: not a finished proxyscale TRAK store (no proxyscale.json)")
    summary = load_json(path)
    if "projector_choice" not in summary:
        raise DataError(f"{store_dir}: built by an older proxyscale (no projector_choice); delete it to rebuild it")
    return summary


def load_features(store_dir: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Finalized features (n_train, proj_dim) and out-to-loss Q (n_train,) of a finished store."""
    prefix = Path(store_dir) / str(MODEL_ID)
    features = load_npy(prefix / "features.mmap", mmap=True)
    q = load_npy(prefix / "out_to_loss.mmap", mmap=True).reshape(-1)
    return np.asarray(features, dtype=np.float32), np.asarray(q, dtype=np.float32)


def score(
    model: torch.nn.Module,
    task,
    target_batches: Callable[[], Iterable[tuple[np.ndarray, tuple]]],
    n_targets: int,
    store_dir: str | Path,
    device: torch.device,
) -> tuple[np.ndarray, np.ndarray]:
    """Raw TRAK scores (n_train, n_targets) of one checkpoint and its Q (n_train,).

    The targets' gradients are projected with the store's projector (same kind, seed, size and batch
    chunking) in a temporary store; the finished store is only read. A store built with another kind of
    projector (CUDA Rademacher against CPU Gaussian, say) cannot be scored here: one clear error.
    """
    info = store_summary(store_dir)
    features, q = load_features(store_dir)
    model = model.to(device).eval()
    batches = list(target_batches())
    if max(len(inds) for inds, _ in batches) > info["projector_batch"]:
        raise DataError(f"{store_dir}: target batches exceed the store's projector batch of {info['projector_batch']}")
    with tempfile.TemporaryDirectory(prefix="proxyscale-targets-") as tmp:
        traker = open_traker(
            model,
            task,
            n_targets,
            Path(tmp),
            info["proj_dim"],
            device,
            info["seed"],
            0.0,
            info["projector_batch"],
            info["projector_choice"],
        )
        here = type(traker.projector).__name__
        if here != info["projector"]:
            raise DataError(
                f"{store_dir}: built with {info['projector']}, but scoring on {device} would project with {here}; "
                "score on the kind of device that featurized, or delete the store to rebuild it"
            )
        if traker.proj_dim != features.shape[1]:
            raise DataError(
                f"{store_dir}: store has projection size {features.shape[1]}, model gives {traker.proj_dim}"
            )
        traker.load_checkpoint(model.state_dict(), model_id=MODEL_ID)
        _featurize_batches(traker, batches, "target gradients")
        target_grads = np.asarray(traker.saver.current_store["grads"], dtype=np.float32)
        del traker
    return features @ target_grads.T, q
