"""The paper preset's GPU path on one GPU, in one command and one table (about 6 minutes on an H100):

  (a) 760m at its auto micro-batch, 3 steps after a warm-up: tokens/s, MFU (6 x params x tokens over
      the dense bf16 peak), ``max_memory_allocated`` and ``max_memory_reserved`` against the memory
      model, and the attention kernel that ran (the CUDA kernels' names, from the profiler);
  (b) the same after its state is saved and restored the way a resumed job restores it (read to the
      CPU, copied into the live tensors, dropped);
  (c) 760m with FlexAttention and ``torch.compile``: compile seconds, dynamo's recompilations over the
      size's micro-batch shapes, tokens/s, memory;
  (d) TRAK featurizing of 760m at its auto micro-batch: seconds per example split into per-example
      gradients, projection and Q, the projector class, the peak memory against the featurize model;
  (e) 37m and 353m: tokens/s and MFU.

Every measurement is printed as a row as soon as it is made, so a run cut short still reports what it
measured. ``--smoke`` runs the same code on this machine's CPU with tiny sizes (what the tests run):

    python bench/gpu_check.py [--steps 3] [--smoke]
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
from pathlib import Path

import torch
import torch._dynamo
import yaml
from torch._dynamo.utils import counters

from proxyscale.datamodels.featurize_memory import featurize_memory, trak_micro_batch
from proxyscale.datamodels.store import Projection
from proxyscale.datamodels.tasks import LMTask
from proxyscale.device import autocast, mfu, peak_flops
from proxyscale.models.architecture import GPTConfig, count_parameters, training_flops
from proxyscale.models.gpt import GPT
from proxyscale.training.distributed import SINGLE
from proxyscale.training.loop import Steps, micro_slices, prepare
from proxyscale.training.memory import GIB, recipe_for
from proxyscale.training.recipe import make_optimizer
from proxyscale.training.resume import Resume

REPO = Path(__file__).resolve().parents[1]
SMOKE_SIZES = {"37m": {"d_model": 32, "n_layers": 1, "n_heads": 4, "batch_size": 8, "lr": 0.001},
               "353m": {"d_model": 48, "n_layers": 2, "n_heads": 4, "batch_size": 8, "lr": 0.001},
               "760m": {"d_model": 64, "n_layers": 2, "n_heads": 4, "batch_size": 8, "lr": 0.001}}  # fmt: skip


def row(check: str, **figures) -> None:
    print(f"| {check} | " + "; ".join(f"{k} {v}" for k, v in figures.items()) + " |", flush=True)


def memory(device) -> dict:
    if device.type != "cuda":
        return {}
    return {"max allocated GiB": f"{torch.cuda.max_memory_allocated(device) / GIB:.1f}",
            "max reserved GiB": f"{torch.cuda.max_memory_reserved(device) / GIB:.1f}"}  # fmt: skip


def reset(device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


class Run:
    """One size's model, optimiser and step runner at its auto micro-batch, on random windows."""

    def __init__(self, size: dict, training: dict, vocab: int, context: int, device):
        self.cfg = GPTConfig.from_size(size, vocab, context)
        self.recipe, self.choice = recipe_for(size, training, self.cfg, device, SINGLE, "gpu_check")
        torch.manual_seed(0)
        self.model = GPT(self.cfg).to(device)
        self.trained = prepare(self.model, self.recipe, device)
        self.runner = Steps(self.trained, make_optimizer(self.model, self.recipe), self.recipe, SINGLE, device, "check")
        self.parts = micro_slices(self.recipe.batch_size, self.recipe.micro_batch_size)
        self.tokens = self.recipe.batch_size * context
        self.batch = torch.randint(0, vocab, (self.recipe.batch_size, context + 1), device=device)
        self.device = device

    def step(self) -> None:
        def loss_of(part):
            def loss():
                with autocast(self.device):
                    return self.trained(self.batch[part, :-1], targets=self.batch[part, 1:]).sum() / self.tokens

            return loss

        self.runner.step([loss_of(p) for p in self.parts], self.recipe.lr)

    def timed(self, steps: int, peak) -> dict:
        reset(self.device)
        start = time.perf_counter()
        for _ in range(steps):
            self.step()
        self.runner.read(steps, self.recipe.lr)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        wall = time.perf_counter() - start
        used = mfu(training_flops(count_parameters(self.cfg), steps * self.tokens), wall, 1, peak)
        shapes = sorted({p.stop - p.start for p in self.parts})
        return {"micro-batches": f"{len(self.parts)} x {shapes}", "tokens/s": f"{steps * self.tokens / wall:,.0f}",
                "MFU (6ND)": "n/a" if used is None else f"{used:.1%}", **memory(self.device),
                "model GiB": f"{self.choice.estimate.total / GIB:.1f}"}  # fmt: skip


def attention_kernels(run: Run) -> str:
    """The names of the attention kernels one forward pass launches (CUDA), from the profiler."""
    if run.device.type != "cuda":
        return "n/a (CPU)"
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof, torch.no_grad(), autocast(run.device):
        run.model(run.batch[:1, :-1])
    names = {e.key for e in prof.key_averages() if any(s in e.key.lower() for s in ("fmha", "flash", "attention"))}
    return ", ".join(sorted(names)[:3]) or "none named"


def timed_call(work, device) -> tuple[float, object]:
    start = time.perf_counter()
    out = work()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start, out


def trak_check(size: dict, trak: dict, vocab: int, context: int, device) -> None:
    """(d): one micro-batch of TRAK featurizing at the auto micro-batch, its parts timed (second pass)."""
    model = GPT(GPTConfig.from_size(size, vocab, context)).to(device)
    micro = trak_micro_batch(model, trak, device)
    project = Projection(model, LMTask(vocab, context).modelout, trak["proj_dim"], 0, device, micro, trak["projector"])
    tokens = torch.randint(0, vocab, (micro, context + 1), device=device)
    batch = (tokens, torch.ones_like(tokens, dtype=torch.bool))
    reset(device)
    for _ in range(2):
        grad_s, grads = timed_call(lambda: project.computer.compute_per_sample_grad(batch=batch), device)
        project_s, _ = timed_call(lambda g=grads: project.projector.project(g, model_id=0), device)
        q_s, _ = timed_call(lambda: project.computer.compute_loss_grad(batch), device)
    predicted = featurize_memory(model.cfg, micro, trak["proj_dim"], device.type == "cuda", trak["projector"])
    seconds = {"gradients": grad_s, "projection": project_s, "Q": q_s}
    per_example = {f"{k} s/example": f"{v / micro:.3f}" for k, v in seconds.items()}
    row("(d) 760m TRAK", **{"micro-batch": micro, **per_example, "projector": type(project.projector).__name__,
        **memory(device), "model GiB": f"{predicted['total'] / GIB:.1f}"})  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on this machine's CPU")
    args = parser.parse_args()
    config = yaml.safe_load((REPO / "configs/paper_lm.yaml").read_text())
    if args.smoke:
        device, vocab, context, sizes = torch.device("cpu"), 300, 32, SMOKE_SIZES
    elif torch.cuda.is_available():
        device, vocab = torch.device("cuda"), config["tokenizer"]["vocab_size"]
        context, sizes = config["model"]["context_length"], config["sizes"]
    else:
        raise SystemExit("bench/gpu_check.py needs a CUDA GPU (or --smoke)")
    peak = peak_flops(device, config.get("peak_tflops"))
    training = {k: v for k, v in config.get("training", {}).items() if k not in ("attention", "compile")}
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    if device.type == "cuda":  # what the memory models fill, against the plan's CARD_BYTES
        total = torch.cuda.get_device_properties(device).total_memory
        name += f", total_memory {total:,} bytes ({total / 2**20:,.0f} MiB), free {torch.cuda.mem_get_info()[0]:,}"
    print(f"{name}, peak {peak / 1e12 if peak else float('nan'):.0f} TFLOP/s bf16, context {context}", flush=True)
    print("| check | figures |\n|---|---|", flush=True)

    run = Run(sizes["760m"], training, vocab, context, device)  # (a)
    run.step()
    row("(a) 760m sdpa", **run.timed(args.steps, peak), kernels=attention_kernels(run))

    with tempfile.TemporaryDirectory() as tmp:  # (b): saved and restored as a resumed job restores it
        resume = Resume(Path(tmp) / "state.pt", every_seconds=1e9)
        resume.save({"model": run.model.state_dict(), "steps": run.runner.state()})
        del run
        reset(device)
        run = Run(sizes["760m"], training, vocab, context, device)
        saved = resume.load()
        run.model.load_state_dict(saved["model"])
        run.runner.restore(saved["steps"])
        del saved
        run.step()
        row("(b) 760m after a restore", **run.timed(args.steps, peak))
    del run
    reset(device)

    if device.type == "cuda":  # (c): FlexAttention trains on GPUs only
        torch._dynamo.reset()
        counters.clear()
        run = Run(sizes["760m"], {**training, "attention": "flex", "compile": True}, vocab, context, device)
        start = time.perf_counter()
        run.step()
        torch.cuda.synchronize(device)
        compiled = time.perf_counter() - start
        figures = run.timed(args.steps, peak)
        row("(c) 760m flex compiled", **{"compile s": f"{compiled:.0f}",
            "graphs": counters["stats"]["unique_graphs"]}, **figures)  # fmt: skip
        del run
        reset(device)

    trak_check(sizes["760m"], config["selection"]["trak"], vocab, context, device)  # (d)

    for size in ("37m", "353m"):  # (e)
        run = Run(sizes[size], training, vocab, context, device)
        run.step()
        row(f"(e) {size}", **run.timed(args.steps, peak))
        del run
        reset(device)


if __name__ == "__main__":
    main()
