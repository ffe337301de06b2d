"""Language-model training with a Chinchilla-style budget: tokens = tokens_per_param x params.

Batches are random windows of ``context_length + 1`` tokens drawn from one or more token streams; each
row's stream is drawn with the distribution's mixture weights, so a training distribution is just a
weighting of shards. AdamW with linear warmup then cosine decay; everything seeded. A global batch is
taken in micro-batches (:mod:`proxyscale.training.loop`); a killed run resumes from its last saved
state (:mod:`proxyscale.training.resume`); the summary records throughput and model FLOPs utilisation.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from proxyscale.device import autocast, mfu, to_device
from proxyscale.errors import ConfigError
from proxyscale.models.architecture import GPTConfig, count_parameters, token_budget, training_flops
from proxyscale.models.gpt import GPT
from proxyscale.training.checkpoints import read_checkpoint, save_checkpoint
from proxyscale.training.distributed import SINGLE, Group
from proxyscale.training.loop import Steps, micro_slices, prepare
from proxyscale.training.recipe import Recipe, lr_at, make_optimizer
from proxyscale.training.resume import NEVER, Resume


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

    def state(self) -> dict:
        return self.rng.bit_generator.state

    def restore(self, state: dict) -> None:
        self.rng.bit_generator.state = state

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


def repetition(streams: dict[str, np.ndarray], weights: dict[str, float], tokens: int) -> dict:
    """How often a run of ``tokens`` training tokens repeats its data.

    Each shard supplies its weight's share of the tokens; its repetition is that share over its length.
    ``repetition`` is tokens trained over the unique tokens of all the run's shards; the most repeated
    shard is what :func:`check_repetition` guards.
    """
    total = sum(weights.values())
    per_shard = {name: tokens * w / total / len(streams[name]) for name, w in weights.items() if w > 0}
    worst = max(per_shard, key=per_shard.get)
    unique = sum(len(streams[name]) for name in per_shard)
    return {
        "unique_tokens": int(unique),
        "repetition": tokens / unique,
        "max_shard_repetition": per_shard[worst],
        "most_repeated_shard": worst,
    }


def check_repetition(info: dict, streams: dict[str, np.ndarray], tokens: int, max_repetition: float, where: str):
    """A run that would repeat a shard more than ``max_repetition`` times fails before training."""
    if info["max_shard_repetition"] > max_repetition:
        shard_tokens = len(streams[info["most_repeated_shard"]])
        raise ConfigError(
            f"{where}: training on {tokens:,} tokens would repeat shard '{info['most_repeated_shard']}' "
            f"{info['max_shard_repetition']:.1f} times (it holds {shard_tokens:,} unique tokens), more than "
            f"model.max_repetition = {max_repetition:g}; add data to it, lower its weight or tokens_per_param, "
            "or raise model.max_repetition"
        )


def train_lm(
    streams: dict[str, np.ndarray],
    weights: dict[str, float],
    cfg: GPTConfig,
    recipe: Recipe,
    tokens_per_param: float,
    seed: int,
    device: torch.device,
    desc: str = "train",
    max_repetition: float = math.inf,
    group: Group = SINGLE,
    resume: Resume = NEVER,
    peak_flops: float | None = None,
) -> tuple[GPT, pd.DataFrame, dict]:
    """Train a fresh model; return it, its loss curve and a summary (params, tokens, FLOPs, repetition,
    time, tokens per second, MFU against ``peak_flops`` per device). A run that would repeat a shard more
    than ``max_repetition`` times is refused before training. In a group of processes
    (:mod:`proxyscale.training.distributed`) every process draws the same global batches and trains on
    its share of their rows. With a ``resume`` file, the run saves its state as it goes and continues
    from a saved state."""
    n_params = count_parameters(cfg)
    tokens_per_step = recipe.batch_size * cfg.context_length
    steps = math.ceil(token_budget(cfg, tokens_per_param) / tokens_per_step)
    n_tokens = steps * tokens_per_step
    repeats = repetition(streams, weights, n_tokens)
    check_repetition(repeats, streams, n_tokens, max_repetition, desc)
    torch.manual_seed(seed)
    model = GPT(cfg).to(device)
    trained = prepare(model, recipe, device, group)
    sampler = WindowSampler(streams, weights, cfg.context_length, seed)
    rows = group.share(recipe.batch_size)
    micro = micro_slices(rows.stop - rows.start, recipe.micro_batch_size)
    divisor = group.loss_divisor(tokens_per_step)
    runner = Steps(trained, make_optimizer(model, recipe), recipe, group, device, desc)
    curve, first, elapsed = [], 0, 0.0
    if (saved := resume.load()) is not None:
        model.load_state_dict(saved["model"])
        runner.restore(saved["steps"])
        sampler.restore(saved["sampler"])
        curve, first, elapsed = saved["curve"], saved["step"], saved["seconds"]
        del saved  # copied into the live tensors: nothing of it stays for the run

    def state(step: int) -> dict:
        seconds = elapsed + time.perf_counter() - start
        return {"model": model.state_dict(), "steps": runner.state(), "sampler": sampler.state(), "curve": curve,
                "step": step, "seconds": seconds}  # fmt: skip

    def micro_loss(batch: torch.Tensor, part: slice):
        def loss() -> torch.Tensor:
            with autocast(device):
                return trained(batch[part, :-1], targets=batch[part, 1:]).sum() / divisor

        return loss

    start = time.perf_counter()
    model.train()
    for step in tqdm(range(first, steps), desc=desc, mininterval=5, ascii=True, disable=not group.is_main,
                     initial=first, total=steps):  # fmt: skip
        lr = lr_at(step, steps, recipe)
        batch = to_device(sampler.batch(recipe.batch_size)[rows], device)
        runner.step([micro_loss(batch, part) for part in micro], lr)
        if (step + 1) % recipe.log_every == 0 or step + 1 == steps:
            curve.append(
                {
                    "step": step + 1,
                    "tokens": (step + 1) * tokens_per_step,
                    "loss": runner.read(step, lr),
                    "lr": lr,
                    "seconds": elapsed + time.perf_counter() - start,
                }
            )
        if step + 1 < steps:
            resume.poll(step + 1, state)
    wall = elapsed + time.perf_counter() - start
    meta = {
        "params": n_params,
        "non_embedding_params": count_parameters(cfg, include_embeddings=False),
        "tokens": n_tokens,
        "steps": steps,
        "flops": training_flops(n_params, n_tokens),
        **repeats,
        "wall_seconds": wall,
        "tokens_per_second": n_tokens / wall / group.world,  # per device
        "mfu": mfu(training_flops(n_params, n_tokens), wall, group.world, peak_flops),
        "final_loss": curve[-1]["loss"],
        "seed": seed,
        "device": str(device),
        "processes": group.world,
        "micro_batch_size": micro[0].stop - micro[0].start,
        "activation_checkpointing": recipe.activation_checkpointing,
        "resumed_from_step": first or None,
        "model_config": asdict(cfg),
        "recipe": asdict(recipe),
    }
    return model, pd.DataFrame(curve), meta


def save_lm(model: GPT, meta: dict, path) -> None:
    """Checkpoint of a language model of the correlation experiment (architecture, weights, summary)."""
    save_checkpoint(path, model, meta, model_config=asdict(model.cfg))


def load_lm(path, device: torch.device | str = "cpu") -> tuple[GPT, dict]:
    """Model (in eval mode) and summary saved by :func:`save_lm`."""
    blob = read_checkpoint(path, device, needs=("model_config",))
    model = GPT(GPTConfig(**blob["model_config"])).to(device)
    model.load_state_dict(blob["state_dict"])
    return model.eval(), blob["meta"]
