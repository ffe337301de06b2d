"""TRAK projection speed and memory on this machine: traker's BasicProjector, the cached dense projector, SJLT.

For every gradient size p and projection size k of the grid, projects batches of 32 random gradients
with
  - ``basic``: traker's ``BasicProjector`` as ``TRAKer`` configures it on CPU (Gaussian, blocks of
    100 output columns, each block's matrix regenerated for every batch);
  - ``dense``: the same projector with its whole p x k matrix cached (proxyscale's ``trak.projector:
    dense`` on CPU); run only where the matrix takes at most ``--dense-limit`` of physical memory;
  - ``sjlt``: proxyscale's sparse projector (``trak.projector: sjlt``),
and prints samples/s, the ratio to ``basic``, and the peak memory each adds to a process that holds
only the gradient batch. Each measurement runs in its own process, so peaks do not mix.

    python bench/projectors.py [--p 125000 1000000 4000000] [--k 256 2048] [--dense-limit 0.25]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys

from timing import seconds_per_call  # bench/timing.py (bench/ is on sys.path when run)

BATCH = 32
MIN_SECONDS = 2.0  # time batches until this much has passed (at least one batch after a warm-up)


def build(kind: str, p: int, k: int):
    import torch
    from trak.projectors import BasicProjector, ProjectionType

    from proxyscale.datamodels.projectors import CPUProjector
    from proxyscale.datamodels.sjlt import SJLTProjector

    cpu = torch.device("cpu")
    if kind == "basic":  # TRAKer's own CPU choice: ProjectionType.normal, default block_size
        return BasicProjector(p, k, 0, ProjectionType.normal, cpu, max_batch_size=BATCH, dtype=torch.float32)
    if kind == "dense":
        return CPUProjector(p, k, 0, ProjectionType.normal, cpu, block_size=k)
    return SJLTProjector(p, k, 0, device=cpu)


def measure(kind: str, p: int, k: int) -> dict:
    """Samples/s and peak RSS of one projector on one (p, k), in this process."""
    import torch

    grads = torch.randn(BATCH, p)
    result = {"samples_per_s": None}
    if kind != "none":
        projector = build(kind, p, k)
        # basic regenerates its matrix every batch: nothing to warm up, and one batch is slow enough
        basic = kind == "basic"
        per_call = seconds_per_call(lambda: projector.project(grads, 0), 0 if basic else MIN_SECONDS, not basic)
        result["samples_per_s"] = BATCH / per_call
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def run_child(kind: str, p: int, k: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--one", kind, str(p), str(k)], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--p", type=int, nargs="+", default=[125_000, 1_000_000, 4_000_000])
    parser.add_argument("--k", type=int, nargs="+", default=[256, 2048])
    parser.add_argument("--dense-limit", type=float, default=0.25, help="largest dense matrix, share of memory")
    parser.add_argument("--one", nargs=3, metavar=("KIND", "P", "K"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one[0], int(args.one[1]), int(args.one[2]))))
        return
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    print(f"batch {BATCH}, {os.cpu_count()} cores, {memory / 2**30:.0f} GiB; samples/s (x basic), extra peak MB")
    print(f"{'p':>9} {'k':>5} | {'basic':>16} | {'dense (cached)':>24} | {'sjlt':>24}")
    for p in args.p:
        base = run_child("none", p, args.k[0])["peak_mb"]
        for k in args.k:
            cells = {}
            for kind in ("basic", "dense", "sjlt"):
                if kind == "dense" and 4 * p * k > args.dense_limit * memory:
                    cells[kind] = f"{'(matrix ' + format(4 * p * k / 2**30, '.1f') + ' GiB)':>24}"
                    continue
                r = run_child(kind, p, k)
                cells[kind] = r["samples_per_s"], r["peak_mb"] - base
            basic = cells["basic"][0]
            row = [f"{cells['basic'][0]:7.1f} {cells['basic'][1]:6.0f} MB"]
            for kind in ("dense", "sjlt"):
                if isinstance(cells[kind], str):
                    row.append(cells[kind])
                else:
                    speed, peak = cells[kind]
                    row.append(f"{speed:8.1f} ({speed / basic:6.1f}x) {peak:5.0f} MB")
            print(f"{p:>9} {k:>5} | " + " | ".join(row), flush=True)


if __name__ == "__main__":
    main()
