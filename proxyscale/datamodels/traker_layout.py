"""One size's TRAK stores rewritten in traker's own on-disk layout, so traker's scoring can read them.

This project computes TRAK itself (:mod:`proxyscale.datamodels.store`): sharded, streamed, resumable,
with its own projections. :func:`export_traker` writes what a size's checkpoints computed into the
directory layout of traker 0.3.2's ``MmapSaver``, one traker model id per checkpoint (0..M-1), so that
``TRAKer(..., load_from_save_dir=True)`` opens it and its own ``finalize_features`` and
``finalize_scores`` compute the datamodel: a check of this project's arithmetic by the reference
implementation, and a way to hand the features to tools built on traker. Under ``out``:

- ``metadata.json``: traker's ``JL dimension`` (k), ``JL matrix type`` and ``train set size``;
- ``id_<j>.json``: model id ``j`` featurized (every row) and not yet finalized;
- ``<j>/grads.mmap`` (n x k), the checkpoint's projected gradients (its shards' ``grads.npy`` in row
  order, already divided by sqrt(p) as traker's are); ``<j>/out_to_loss.mmap`` (n x 1), its Q;
  ``<j>/_is_featurized.mmap`` (all ones); ``<j>/features.mmap`` (n x k, left for ``finalize_features``);
  ``<j>/<exp>_grads.mmap`` (targets x k), the targets' gradients projected with *that checkpoint's*
  projection (:func:`proxyscale.datamodels.store.target_gradients`);
- ``experiments.json`` and ``scores/<exp>.mmap`` (n x targets), the experiment ``finalize_scores``
  fills;
- ``proxyscale.json`` (:data:`SUMMARY`): which checkpoint each model id is, its projection (kind, seed,
  size), the dtype, ``lambda_reg`` and whether Q was computed.

traker's ``finalize_scores`` averages ``Phi_j (Phi_j^T Phi_j + lambda I)^-1 g_j`` over the model ids and
multiplies by the mean of their out-to-loss Q: this project's datamodel with ``q_term``
(:func:`proxyscale.datamodels.datamodel.datamodel`). Reading needs three settings the metadata does
not carry: ``lambda_reg`` and ``use_half_precision`` (from :data:`SUMMARY`), and a projector:

Projections differ per checkpoint. Every checkpoint was projected by this project's projector (SJLT or
traker's dense ones, :mod:`proxyscale.datamodels.projectors`) with its own seed, under traker's model id
0 (:data:`proxyscale.datamodels.store.MODEL_ID`), whereas a TRAKer draws each model id's projection from
its own ``projector_seed`` and the model id. A TRAKer's projector would therefore project new examples
unlike the stored features, and its scores would be silently wrong. So the ``JL matrix type`` is
proxyscale's own (``proxyscale:<projector class>``), which no projector of traker's matches: the saver
refuses a TRAKer built with one, and :func:`traker_projector` gives the stand-in to build it with, which
refuses to project. Targets are scored by exporting their gradients here, projected by proxyscale.

Without Q (featurized with ``trak.q_term: false`` where nothing else needed it), ``out_to_loss`` is
written as ones and :data:`SUMMARY` says so: traker's ``finalize_scores`` always multiplies by the mean
out-to-loss, and with Q = 1 it returns the plain mean of the checkpoints' scores, which is exactly this
project's datamodel without Q (the paper's eq. 17, which drops Q). Refusing instead would mean
featurizing every checkpoint again, the costliest step, only to export it.

Every array is streamed from the shards a block of rows at a time and written in place, so the export
never holds Phi in memory (traker's own ``finalize_features`` then does: it is for sizes that fit).
The directory is written whole or not at all (:func:`proxyscale.io.atomic_dir`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from trak.projectors import AbstractProjector

from proxyscale.artifacts import NpyRows, load_json, load_npy
from proxyscale.datamodels import store
from proxyscale.errors import ConfigError, DataError
from proxyscale.io import RowFile, atomic_dir, save_json

SUMMARY = "proxyscale.json"
EXPERIMENT = "targets"
TRAKER_VERSION = "0.3.2"  # the MmapSaver layout written here
BLOCK_BYTES = 64 * 2**20  # rows copied at once from a shard
DTYPES = ("float32", "float16")  # traker's use_half_precision False / True
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Checkpoint:
    """One checkpoint of a size to export: ``name`` (its model file, recorded), ``shard_dirs`` (its kept
    featurized shards, in row order) and ``targets``, its targets' projected gradients (targets x k, from
    :func:`proxyscale.datamodels.store.target_gradients` with this checkpoint's model and first shard)."""

    name: str
    shard_dirs: Sequence[str | Path]
    targets: np.ndarray


def check_kept(name: str, shard_dirs: Sequence[str | Path]) -> list[Path]:
    """The shard directories of checkpoint ``name``, each holding its projected gradients; a
    :class:`ConfigError` in one line when they were not kept (temporary shards, deleted once scored)."""
    dirs = [Path(d) for d in shard_dirs]
    missing = [f"{d} has no grads.npy" for d in dirs if not (d / "grads.npy").is_file()]
    if missing or not dirs:
        raise ConfigError(
            f"trak.keep_gradients: the projected gradients of {name} were not kept ({(missing or ['no shards'])[0]}); "
            "exporting to traker needs them: set trak.keep_gradients: true and featurize again"
        )
    return dirs


def export_traker(
    checkpoints: Sequence[Checkpoint],
    out: str | Path,
    exp_name: str = EXPERIMENT,
    lambda_reg: float = 0.0,
    dtype: str = "float32",
) -> dict:
    """Write a size's ``checkpoints`` (model ids 0..M-1, in the order given) into traker's layout at ``out``
    (module docstring), the targets as traker experiment ``exp_name``, the arrays in ``dtype`` (float32,
    or float16 for a TRAKer with ``use_half_precision``). ``lambda_reg`` is only recorded: traker applies
    it when finalizing. Returns the summary, also written to ``out``/:data:`SUMMARY`."""
    if not checkpoints:
        raise ValueError("a traker export needs at least one checkpoint")
    if dtype not in DTYPES:
        raise ValueError(f"dtype {dtype!r}: traker stores float32 or float16")
    dirs = [check_kept(c.name, c.shard_dirs) for c in checkpoints]
    infos = [store.shard_summaries(d) for d in dirs]
    n, k = infos[0][0]["n_train"], infos[0][0]["proj_dim"]
    targets = [np.asarray(c.targets) for c in checkpoints]
    q_flags = {info[0]["q"] for info in infos}
    for c, info, g in zip(checkpoints, infos, targets):
        if (info[0]["n_train"], info[0]["proj_dim"]) != (n, k):
            raise DataError(
                f"{c.name}: {info[0]['n_train']} training examples projected to {info[0]['proj_dim']}, but "
                f"{checkpoints[0].name} has {n} to {k}: traker's layout holds one training set and one JL dimension"
            )
        if g.ndim != 2 or g.shape != (len(targets[0]), k):
            raise DataError(f"{c.name}: target gradients of shape {g.shape}, not ({len(targets[0])}, {k})")
    if len(q_flags) != 1:
        raise DataError("the checkpoints were featurized some with Q and some without: their mean Q means nothing")
    with_q = q_flags.pop()
    kinds = sorted({info[0]["projector"] for info in infos})
    label = f"proxyscale:{'+'.join(kinds)}"
    out = Path(out)
    final = out.resolve()
    summary = {
        "traker_layout": TRAKER_VERSION,
        "experiment": exp_name,
        "train_set_size": n,
        "proj_dim": k,
        "num_targets": len(targets[0]),
        "dtype": dtype,
        "use_half_precision": dtype == "float16",
        "lambda_reg": lambda_reg,
        "q": with_q,
        "out_to_loss": "Q of every training example"
        if with_q
        else "ones: featurized without Q (trak.q_term false); finalize_scores gives the datamodel without Q",
        "jl_matrix_type": label,
        "projections": "one per checkpoint, drawn by proxyscale with the seed below (traker's model id 0); "
        "open with projector=traker_layout.traker_projector(save_dir): traker's would project unlike them",
        "models": [
            {
                "model_id": j,
                "checkpoint": c.name,
                "seed": info[0]["seed"],
                "projector": info[0]["projector"],
                "projector_choice": info[0]["projector_choice"],
                "proj_dim": info[0]["proj_dim"],
                "grad_dim": info[0]["grad_dim"],
                "store_dtype": info[0]["store_dtype"],
                "shards": [{"dir": str(d), "rows": i["rows"]} for d, i in zip(shard_dirs, info)],
            }
            for j, (c, info, shard_dirs) in enumerate(zip(checkpoints, infos, dirs))
        ],
    }
    with atomic_dir(out) as tmp:
        save_json({"JL dimension": k, "JL matrix type": label, "train set size": n}, tmp / "metadata.json")
        scores = f"scores/{exp_name}.mmap"
        experiment = {"num_targets": len(targets[0]), "scores_path": str(final / scores), "scores_finalized": 0}
        save_json({exp_name: experiment}, tmp / "experiments.json")
        RowFile(tmp / scores, (n, len(targets[0])), dtype)  # zeros (sparse) until finalize_scores
        for j, (shard_dirs, g) in enumerate(zip(dirs, targets)):
            _write_model(tmp / str(j), shard_dirs, g, exp_name, dtype, with_q)
            save_json({str(j): {"is_featurized": 1, "is_finalized": 0}}, tmp / f"id_{j}.json")
        save_json(summary, tmp / SUMMARY)
    log.info("exported %d checkpoints (%d examples, k %d, Q %s) to %s", len(dirs), n, k, with_q, out)
    return summary


def _write_model(prefix: Path, shard_dirs: list[Path], targets: np.ndarray, exp_name: str, dtype, with_q) -> None:
    """One model id's directory: its gradients, Q (or ones), featurized flags, target gradients, and the
    features file ``finalize_features`` fills (made at full size, sparse)."""
    n = sum(len(NpyRows(d / "grads.npy")) for d in shard_dirs)
    k = targets.shape[1]
    grads = RowFile(prefix / "grads.mmap", (n, k), dtype)
    q = RowFile(prefix / "out_to_loss.mmap", (n, 1), dtype)
    flags = RowFile(prefix / "_is_featurized.mmap", (n,), np.int32)
    RowFile(prefix / "features.mmap", (n, k), dtype)
    first = 0
    for d in shard_dirs:
        phi = NpyRows(d / "grads.npy")
        for start, block in phi.blocks(phi.rows_within(BLOCK_BYTES)):
            grads.write(first + start, block)
            flags.write(first + start, np.ones(len(block), np.int32))
        qs = load_npy(d / "q.npy", mmap=True) if with_q else np.ones(len(phi), np.float32)
        q.write(first, np.asarray(qs).reshape(-1, 1))
        first += len(phi)
    RowFile(prefix / f"{exp_name}_grads.mmap", targets.shape, dtype).write(0, targets)


class ExportedProjection(AbstractProjector):
    """The projector to open an export with: its JL dimension and type are the export's, so traker's
    saver accepts the TRAKer; it refuses to project, since each checkpoint was projected by proxyscale
    with a projection of its own (module docstring)."""

    def __init__(self, proj_dim: int, proj_type: str, save_dir: str | Path):
        super().__init__(0, proj_dim, 0, proj_type, "cpu")
        self.save_dir = save_dir

    def project(self, grads, model_id: int):
        raise DataError(
            f"{self.save_dir}: each checkpoint's gradients were projected by proxyscale with its own seed "
            f"({SUMMARY}); traker cannot project new examples like them: export their gradients with proxyscale"
        )

    def free_memory(self) -> None:
        pass


def traker_projector(save_dir: str | Path) -> ExportedProjection:
    """The projector a ``TRAKer`` opening the export at ``save_dir`` needs (``projector=``)."""
    meta = load_json(Path(save_dir) / "metadata.json")
    return ExportedProjection(int(meta["JL dimension"]), meta["JL matrix type"], save_dir)


def exported_summary(save_dir: str | Path) -> dict:
    """What :func:`export_traker` recorded: each model id's checkpoint and projection, and the settings a
    ``TRAKer`` must be opened with (``use_half_precision``, ``lambda_reg``)."""
    return load_json(Path(save_dir) / SUMMARY)
