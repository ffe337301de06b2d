"""Language-model training with a Chinchilla-style budget: tokens = tokens_per_param x params.

Batches are random windows of ``context_length + 1`` tokens drawn from one or more token streams; each
row's stream is drawn with the distribution's mixture weights, so a training distribution is just a
weighting of shards. AdamW with linear warmup then cosine decay; everything seeded.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm import tqdm

from proxyscale.device import autocast
from proxyscale.errors import ConfigError
from proxyscale.io import atomic_path
from proxyscale.models import GPT, GPTConfig, count_parameters, training_flops


@dataclass(frozen=True)
class Recipe:
    """Optimisation settings of one training run."""

    batch_size: int
    lr: float
    warmup_frac: float = 0.05
    min_lr_frac: float = 0.1
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    log_every: int = 10


def lr_at(step: int, total_steps: int, recipe: Recipe) -> float:
    """Learning rate at ``step`` (0-based): linear warmup, then cosine decay to ``min_lr_frac``."""
    warmup = max(1, round(recipe.warmup_frac * total_steps))
    if step < warmup:
        return recipe.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total_steps - warmup)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return recipe.lr * (recipe.min_lr_frac + (1 - recipe.min_lr_frac) * cosine)


class WindowSampler:
    """Random training windows from weighted token streams, reproducible from a seed."""

    def __init__(self, streams: dict[str, np.ndarray], weights: dict[str, float], window: int, seed: int):
        self.names = sorted(weights)
        for name in self.names:
            if len(streams[name]) <= window:
                raise ConfigError(
                    f"shard '{name}' has {len(streams[name])} tokens, fewer than one window of {window + 1}"
                )
        self.streams = [streams[n] for n in self.names]
        w = np.asarray([weights[n] for n in self.names], dtype=float)
        self.probs = w / w.sum()
        self.window = window
        self.rng = np.random.default_rng(seed)

    def batch(self, batch_size: int) -> torch.Tensor:
        which = self.rng.choice(len(self.streams), size=batch_size, p=self.probs)
        out = np.empty((batch_size, self.window + 1), dtype=np.int64)
        offsets = np.arange(self.window + 1)
        for k in np.unique(which):
            rows = np.flatnonzero(which == k)
            stream = self.streams[k]
            starts = self.rng.integers(0, len(stream) - self.window, size=len(rows))
            out[rows] = stream[starts[:, None] + offsets]
        return torch.from_numpy(out)


def make_optimizer(model: torch.nn.Module, recipe: Recipe) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not biases, norms or other vectors)."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=recipe.lr,
        betas=(recipe.beta1, recipe.beta2),
        fused=True,  # one kernel for all parameters, on CPU and CUDA alike
    )


def optimizer_step(model: torch.nn.Module, opt: torch.optim.Optimizer, loss: torch.Tensor, lr: float, grad_clip: float, where: str) -> None:
    """One update at learning rate ``lr`` with gradient clipping; a non-finite loss is a clear error."""
    if not torch.isfinite(loss):
        raise FloatingPointError(f"{where}: loss became {loss.item()}; lower the learning rate")
    for group in opt.param_groups:
        group["lr"] = lr
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    opt.step()


def token_budget(cfg: GPTConfig, tokens_per_param: float) -> int:
    return math.ceil(tokens_per_param * count_parameters(cfg))


def train_lm(
    streams: dict[str, np.ndarray],
    weights: dict[str, float],
    cfg: GPTConfig,
    recipe: Recipe,
    tokens_per_param: float,
    seed: int,
    device: torch.device,
    desc: str = "train",
) -> tuple[GPT, pd.DataFrame, dict]:
    """Train a fresh model; return it, its loss curve and a summary (params, tokens, FLOPs, time)."""
    torch.manual_seed(seed)
    model = GPT(cfg).to(device)
    n_params = count_parameters(cfg)
    tokens_per_step = recipe.batch_size * cfg.context_length
    steps = math.ceil(token_budget(cfg, tokens_per_param) / tokens_per_step)
    sampler = WindowSampler(streams, weights, cfg.context_length, seed)
    opt = make_optimizer(model, recipe)
    curve, start, running = [], time.perf_counter(), []
    model.train()
    for step in tqdm(range(steps), desc=desc, mininterval=5, ascii=True):
        lr = lr_at(step, steps, recipe)
        batch = sampler.batch(recipe.batch_size).to(device)
        with autocast(device):
            logits = model(batch[:, :-1])
        loss = F.cross_entropy(logits.float().reshape(-1, cfg.vocab_size), batch[:, 1:].reshape(-1))
        optimizer_step(model, opt, loss, lr, recipe.grad_clip, f"{desc} step {step}")
        running.append(loss.item())
        if (step + 1) % recipe.log_every == 0 or step + 1 == steps:
            curve.append(
                {
                    "step": step + 1,
                    "tokens": (step + 1) * tokens_per_step,
                    "loss": float(np.mean(running)),
                    "lr": lr,
                    "seconds": time.perf_counter() - start,
                }
            )
            running = []
    n_tokens = steps * tokens_per_step
    meta = {
        "params": n_params,
        "non_embedding_params": count_parameters(cfg, include_embeddings=False),
        "tokens": n_tokens,
        "steps": steps,
        "flops": training_flops(n_params, n_tokens),
        "wall_seconds": time.perf_counter() - start,
        "final_loss": curve[-1]["loss"],
        "seed": seed,
        "device": str(device),
        "model_config": asdict(cfg),
        "recipe": asdict(recipe),
    }
    return model, pd.DataFrame(curve), meta


def save_checkpoint(model: GPT, meta: dict, path) -> None:
    with atomic_path(path) as tmp:
        torch.save({"model_config": asdict(model.cfg), "state_dict": model.state_dict(), "meta": meta}, tmp)


def load_checkpoint(path, device: torch.device | str = "cpu") -> tuple[GPT, dict]:
    """Model (in eval mode) and summary saved by :func:`save_checkpoint`."""
    blob = torch.load(path, map_location=device, weights_only=True)
    model = GPT(GPTConfig(**blob["model_config"])).to(device)
    model.load_state_dict(blob["state_dict"])
    return model.eval(), blob["meta"]
