"""Per-sample losses (and accuracy where defined) of a language model on tokenised test sets.

A candidate's loss is the mean next-token negative log-likelihood over its continuation tokens given
its context, the context cut from the left so the pair fits the model's context length. A test
example's loss is its gold candidate's; accuracy is greedy reproduction of the continuation for
``greedy`` test sets and lowest length-normalised loss among the choices for ``multiple_choice``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from proxyscale.data.prepare import fit_to_context
from proxyscale.device import autocast
from proxyscale.training.losses import masked_mean, token_nll_and_hit


@torch.no_grad()
def candidate_scores(model, frame: pd.DataFrame, batch_size: int, device: torch.device) -> pd.DataFrame:
    """``frame`` (tokenised candidates) with ``loss``, ``n_tokens`` and ``greedy_correct`` added."""
    model.eval()
    T = model.cfg.context_length
    pairs = [fit_to_context(c, t, T) for c, t in zip(frame["context_ids"], frame["continuation_ids"])]
    losses = np.empty(len(pairs))
    greedy = np.empty(len(pairs), dtype=bool)
    order = np.argsort([len(c) + len(t) for c, t in pairs], kind="stable")
    for lo in range(0, len(order), batch_size):
        idx = order[lo : lo + batch_size]
        seqs = [np.concatenate(pairs[i]) for i in idx]
        width = max(len(s) for s in seqs) - 1
        inputs = torch.zeros(len(idx), width, dtype=torch.long)
        targets = torch.zeros(len(idx), width, dtype=torch.long)
        mask = torch.zeros(len(idx), width, dtype=torch.bool)
        for row, (i, seq) in enumerate(zip(idx, seqs)):
            n = len(seq) - 1
            inputs[row, :n] = torch.from_numpy(seq[:-1])
            targets[row, :n] = torch.from_numpy(seq[1:])
            mask[row, len(pairs[i][0]) - 1 : n] = True
        inputs, targets, mask = inputs.to(device), targets.to(device), mask.to(device)
        with autocast(device):
            both = model.per_token(inputs, targets, token_nll_and_hit)  # never the batch's whole logits
        hit = both[..., 1].bool() | ~mask
        losses[idx] = masked_mean(both[..., 0], mask).cpu().numpy()
        greedy[idx] = hit.all(1).cpu().numpy()
    out = frame[["example_id", "choice", "is_gold", "kind"]].copy()
    out["loss"] = losses
    out["n_tokens"] = [len(t) for _, t in pairs]
    out["greedy_correct"] = greedy
    return out


def per_sample(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per test example: gold loss, token count, and ``correct`` (NaN where undefined)."""
    gold = scores[scores["is_gold"]].set_index("example_id").sort_index()
    out = gold[["loss", "n_tokens"]].copy()
    kind = scores["kind"].iloc[0]
    if kind == "greedy":
        out["correct"] = gold["greedy_correct"].astype(float)
    elif kind == "multiple_choice":
        best = scores.loc[scores.groupby("example_id")["loss"].idxmin()].set_index("example_id")
        out["correct"] = best["is_gold"].reindex(out.index).astype(float)
    else:
        out["correct"] = np.nan
    return out.reset_index()


def chance_accuracy(scores: pd.DataFrame) -> float | None:
    """Accuracy of guessing: 1/choices for multiple choice, 0 for greedy, None where undefined."""
    kind = scores["kind"].iloc[0]
    if kind == "multiple_choice":
        return float(1.0 / scores.groupby("example_id").size().mean())
    return 0.0 if kind == "greedy" else None
