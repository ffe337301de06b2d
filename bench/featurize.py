"""TRAK featurizing speed against the forward + backward FLOPs it needs, per model, on this machine.

For each model, on batches of the configured TRAK batch size, prints samples/s of
  - ``fwd+bwd``: one batched forward and backward pass of the output (the mean gradient): the floor,
    with its GFLOP/s (3 x the forward FLOPs per example);
  - ``per-ex grads``: traker's per-example gradients alone (``torch.func`` vmap of grad), as a dict of
    per-parameter blocks;
  - ``+sjlt`` / ``+dense``: those gradients projected by SJLT straight from the blocks, and by the
    cached dense projector, which first concatenates the blocks into one (batch, p) matrix;
  - ``feat. sjlt +Q`` / ``featurize sjlt`` / ``featurize dense``: :func:`proxyscale.datamodels.store.featurize`
    end to end (gradients, projection, the store's writes, the partial Phi^T Phi) on the training
    examples, with Q's forward pass (what every store ran before it was skipped for ``q_term: false``)
    and without it;
and the share of the floor each reaches. The models: the default attribution sizes (vision), the
selection sizes (language) and configs/cpu_1m.yaml's million-parameter reference.

    python bench/featurize.py [--examples 400] [--proj-dim 2048]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from timing import seconds_per_call  # bench/timing.py (bench/ is on sys.path when run)
from trak.gradient_computers import FunctionalGradientComputer

from proxyscale.datamodels import store
from proxyscale.datamodels.examples import Arrays
from proxyscale.datamodels.projectors import effective_proj_dim, make_projector
from proxyscale.datamodels.tasks import LMTask, VisionTask
from proxyscale.models import built_parameters

REPO = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")


def rate(fn, samples: int, seconds: float = 2.0) -> float:
    """Samples/s of ``fn`` (``samples`` per call), after a warm-up call."""
    return samples / seconds_per_call(fn, seconds)


UNIFORM_PIXELS = (0.5,), (0.2887,)  # per-channel mean and spread of the uniform random pixels batch_of draws


def models(config: dict) -> list[tuple[str, object, dict, int]]:
    """(name, task, size spec, batch size) for the models measured."""
    vision = config["attribution"]["vision"]
    out = []
    task = VisionTask(vision["family"], (1, 14, 14), 10, *UNIFORM_PIXELS)
    for name, spec in vision["sizes"].items():
        out.append((f"vision {name}", task, spec, config["attribution"]["trak"]["batch_size"]))
    sel = config["selection"]
    lm = LMTask(257, sel["context_length"])
    for name, spec in sel["sizes"].items():
        out.append((f"lm {name}", lm, spec, 32))
    big = yaml.safe_load((REPO / "configs/cpu_1m.yaml").read_text())["attribution"]
    ref = big["vision"]["reference"]
    mlp = VisionTask("mlp", (1, 28, 28), 10, *UNIFORM_PIXELS)
    out.append((f"mlp {ref} (cpu_1m)", mlp, big["vision"]["sizes"][ref], 100))
    return out


def batch_of(task, n: int):
    rng = np.random.default_rng(0)
    if isinstance(task, VisionTask):
        x = rng.integers(0, 256, (n, *task.image_shape), dtype=np.uint8)
        return task.to_batch(x, rng.integers(0, task.num_classes, n), CPU)
    tokens = rng.integers(0, task.vocab_size, (n, task.context_length + 1))
    return task.to_batch(tokens, np.ones_like(tokens, dtype=bool), CPU)


def row(name: str, task, spec: dict, batch_size: int, examples: int, proj_dim: int) -> str:
    torch.manual_seed(0)
    model = task.make_model(spec).eval()
    p = built_parameters(model)
    k = effective_proj_dim(model, proj_dim)
    batch = batch_of(task, batch_size)
    modelout = task.modelout
    computer = FunctionalGradientComputer(model, modelout, p, torch.float32, CPU)

    def forward_backward():
        model.zero_grad(set_to_none=True)
        task.outputs(model, batch).sum().backward()

    flops = 3 * task.flops_per_example(model)
    floor = rate(forward_backward, batch_size)
    grads = rate(lambda: computer.compute_per_sample_grad(batch), batch_size)
    cells = [f"{floor:8.0f} {floor * flops / 1e9:6.2f}", f"{grads:8.0f} {grads / floor:5.0%}"]
    for choice in ("sjlt", "dense"):
        if choice == "dense" and 4 * p * k > 2**31:
            cells.append(f"{'-':>14}")
            continue
        proj = make_projector(model, k, 0, CPU, batch_size, choice)
        speed = rate(lambda proj=proj: proj.project(computer.compute_per_sample_grad(batch), 0), batch_size)
        cells.append(f"{speed:8.0f} {speed / floor:5.0%}")
    n = max(examples, batch_size)
    examples_all = Arrays(*(t.numpy() for t in batch_of(task, n)))
    for choice, with_q in (("sjlt", True), ("sjlt", False), ("dense", False)):
        if choice == "dense" and 4 * p * k > 2**31:
            cells.append(f"{'-':>14}")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            store.featurize(model, task, examples_all, batch_size, f"{tmp}/s", k, CPU, 0, choice, with_q=with_q)
            speed = n / (time.perf_counter() - start)
        cells.append(f"{speed:8.0f} {speed / floor:5.0%}")
    return f"{name:>20} {p:>9,} {k:>5} | " + " | ".join(cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=400, help="examples featurized end to end")
    parser.add_argument("--proj-dim", type=int, default=2048)
    args = parser.parse_args()
    torch.set_num_threads(1)  # as a workflow job with threads: 1
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    print("samples/s on 1 thread (share of the fwd+bwd floor); fwd+bwd also in GFLOP/s")
    heads = ["fwd+bwd  GFLOP/s", "per-ex grads", "+sjlt", "+dense"]
    heads += ["feat. sjlt +Q", "featurize sjlt", "featurize dense"]
    print(f"{'model':>20} {'params':>9} {'k':>5} | " + " | ".join(f"{h:>14}" for h in heads))
    for name, task, spec, batch_size in models(config):
        print(row(name, task, spec, batch_size, args.examples, args.proj_dim), flush=True)


if __name__ == "__main__":
    main()
