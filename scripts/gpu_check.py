"""Check the CUDA paths of TRAK on a machine with a GPU and traker's fast_jl (none runs in CI).

1. The projector choice for ``trak.projector: dense``: traker's ``CudaProjector`` while parameters x
   batch stays below 2^32, its ``ChunkedCudaProjector`` past that
   (:func:`proxyscale.datamodels.projectors.make_projector`); for ``sjlt``, the sparse projector on the GPU.
2. All three are random projections that keep inner products: for random per-example gradients G and
   projection size k, (PG)(PG)^T / k estimates G G^T with a relative (Frobenius) error near
   sqrt((n + 1) / k) for n rows; the same seed gives the same projection, checkpoint seeds differ.
3. A small language model featurized and scored on the GPU (CUDA projector, ``dense``) gives TRAK scores that
   rank the training examples like the CPU path's (Gaussian projector) on the same checkpoint: a
   mismatch between the featurizing and the scoring projection would give no agreement at all. The
   agreement is lower than between two CPU projections (0.19 against 0.41 on an H200, with 0.28
   between two CUDA projections): fast_jl rounds the gradients to float16 before projecting
   (``convert<float>`` in its ``data_loading.cuh``), so small gradient entries lose precision.

    python scripts/gpu_check.py        # prints one line per check, exits 1 if one fails
"""

from __future__ import annotations

import math
import sys
import tempfile
import time

import numpy as np
import torch
from scipy.stats import spearmanr

from proxyscale.datamodels import projectors, store
from proxyscale.datamodels.examples import Arrays
from proxyscale.datamodels.tasks import LMTask
from proxyscale.models import built_parameters
from proxyscale.training.fit import fit
from proxyscale.training.recipe import Recipe

GPU = torch.device("cuda")
FAILED = []


def check(name: str, ok: bool, detail: str) -> None:
    print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}", flush=True)
    if not ok:
        FAILED.append(name)


def gram_check(name: str, model: torch.nn.Module, rows: int, proj_dim: int, expected: str, choice: str) -> None:
    """Project random per-parameter gradients of ``rows`` examples; compare Gram matrices."""
    proj = projectors.make_projector(model, proj_dim, projectors.checkpoint_seed(0, 0), GPU, rows, choice)
    found = f"{type(proj).__name__} for {built_parameters(model):,} params x {rows} rows (2^32 = {2**32:,})"
    check(f"{name} projector", type(proj).__name__ == expected, found)
    gen = torch.Generator(device=GPU).manual_seed(0)
    grads = {n: torch.randn((rows, *p.shape), device=GPU, generator=gen) for n, p in model.named_parameters()}
    start = time.perf_counter()
    out = proj.project(grads, model_id=0).float()
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    flat = torch.cat([g.flatten(1) for g in grads.values()], 1)
    exact = (flat @ flat.T).double()
    del flat
    approx = (out @ out.T).double() / proj_dim
    error = ((approx - exact).norm() / exact.norm()).item()
    bound = 2 * math.sqrt((rows + 1) / proj_dim)
    check(f"{name} inner products", error < bound, f"relative error {error:.3f} (expected about "
          f"{bound / 2:.3f}, bound {bound:.3f}); projected in {seconds:.2f}s")  # fmt: skip
    again = proj.project(grads, model_id=0).float()
    other = projectors.make_projector(model, proj_dim, projectors.checkpoint_seed(0, 1), GPU, rows, choice)
    check(f"{name} seeds", torch.equal(out, again) and not torch.equal(out, other.project(grads, model_id=0).float()),
          "same seed, same projection; the next checkpoint's seed, another")  # fmt: skip


def scores_on(device: torch.device, model, task, x, m, n_train: int, proj_dim: int, seed: int) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        store.featurize(
            model, task, Arrays(x[:n_train], m[:n_train]), 32, f"{tmp}/store", proj_dim, device, seed=seed,
            projector="dense",
        )  # fmt: skip
        store.score(model, task, Arrays(x[n_train:], m[n_train:]), 32, [f"{tmp}/store"], f"{tmp}/s.npy", device)
        return np.load(f"{tmp}/s.npy")


def main() -> int:
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}, fast_jl {projectors.fast_jl_available()}")
    if not projectors.fast_jl_available():
        print("FAIL fast_jl is not installed: pip install 'traker[fast]'")
        return 1
    task = LMTask(vocab_size=257, context_length=64)
    small = task.make_model({"d_model": 256, "n_layers": 4, "n_heads": 4}).to(GPU)
    gram_check("CudaProjector", small, 32, 1024, "CudaProjector", "dense")
    gram_check("SJLT", small, 32, 1024, "SJLTProjector", "sjlt")
    big = task.make_model({"d_model": 1024, "n_layers": 4, "n_heads": 8}).to(GPU)  # 50.6M parameters
    gram_check("ChunkedCudaProjector", big, 90, 1024, "ChunkedCudaProjector", "dense")  # 4.55e9 > 2^32
    del big, small
    torch.cuda.empty_cache()

    # 8 topics, each a fixed token sequence; an example is its topic's with 20% of tokens replaced: data
    # with structure, so TRAK scores carry signal beyond the projection's noise (n_train > projection)
    rng = np.random.default_rng(0)
    topics = rng.integers(0, 257, (8, 65))
    x = topics[rng.integers(0, 8, 2540)]
    noise = rng.random(x.shape) < 0.2
    x[noise] = rng.integers(0, 257, noise.sum())
    m = np.ones_like(x, dtype=bool)
    m[:, 0] = False
    n_train = 2500
    size = {"d_model": 8, "n_layers": 2, "n_heads": 4}
    model, _ = fit(task, size, Arrays(x, m), np.arange(n_train), Recipe(batch_size=8, lr=0.01), 2, 0, GPU)
    gpu = scores_on(GPU, model, task, x, m, n_train, 2048, 3)
    cpu = [scores_on(torch.device("cpu"), model.cpu(), task, x, m, n_train, 2048, seed) for seed in (3, 4)]

    def agreement(a, b):
        return np.mean([spearmanr(a[:, j], b[:, j]).statistic for j in range(a.shape[1])])

    rho, baseline = agreement(gpu, cpu[0]), agreement(cpu[0], cpu[1])
    detail = f"mean Spearman over 40 targets {rho:.3f}, two CPU projections {baseline:.3f} (projection 2048)"
    check("CUDA vs CPU TRAK scores", baseline > 0.25 and rho > 0.1, detail)
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
