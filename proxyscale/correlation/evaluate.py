"""Per-sample losses (and accuracy where defined) of a language model on tokenised test sets.

A candidate's loss is the mean next-token negative log-likelihood over its continuation tokens given
its context, the context cut from the left so the pair fits the model's context length. A test
example's loss is its gold candidate's; accuracy is greedy reproduction of the continuation for
``greedy`` test sets and lowest length-normalised loss among the choices for ``multiple_choice``.

Each loss also records the UTF-8 bytes of the text it was measured on and the tokenizer's fingerprint:
losses per token of models with different tokenizers are not comparable, losses per byte are
(:func:`proxyscale.correlation.analysis.comparable_losses`). A model is anything with ``per_token`` and
``context_length`` (the workflow's GPT, or :class:`proxyscale.models.imported.ImportedLM`); a model with
its own tokenizer scores the test set's text re-tokenised with it (:func:`retokenise`).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch

from proxyscale.artifacts import load_parquet
from proxyscale.data.prepare import candidate_ids, fit_to_context
from proxyscale.device import autocast
from proxyscale.errors import DataError
from proxyscale.io import save_parquet
from proxyscale.losses import masked_mean, token_nll_and_hit


def retokenise(frame: pd.DataFrame, tokenizer, where: str) -> pd.DataFrame:
    """``frame`` (a test set) with its candidates' token ids from ``tokenizer``, encoded as the test set's
    own were (:func:`proxyscale.data.prepare.candidate_ids`); ``where`` names the file for messages."""
    if "continuation_bytes" not in frame:
        raise DataError(
            f"{where}: built by an older proxyscale, which kept only 500 characters of each text; rebuild it "
            "(snakemake --forcerun build_testset) to score it with another tokenizer"
        )
    pairs = [candidate_ids(tokenizer, c, t) for c, t in zip(frame["context"], frame["continuation"])]
    return frame.assign(context_ids=[c for c, _ in pairs], continuation_ids=[t for _, t in pairs])


def scored_bytes(frame: pd.DataFrame, kept: list[np.ndarray], tokenizer=None) -> np.ndarray:
    """UTF-8 bytes of the text each candidate's loss is measured on: its whole continuation where every
    token was ``kept`` in the context, else the kept tokens' (``tokenizer.byte_length``; NaN without a
    tokenizer, or for a test set that does not record its continuations' lengths)."""
    if "continuation_bytes" in frame:
        out = frame["continuation_bytes"].to_numpy(dtype=float).copy()
    else:
        out = np.full(len(frame), np.nan)
    for i, (ids, scored) in enumerate(zip(frame["continuation_ids"], kept)):
        if len(scored) < len(ids):
            out[i] = np.nan if tokenizer is None else tokenizer.byte_length(scored)
    return out


@torch.no_grad()
def candidate_scores(model, frame: pd.DataFrame, batch_size: int, device: torch.device, tokenizer=None) -> pd.DataFrame:
    """``frame`` (tokenised candidates) with ``loss``, ``n_tokens``, ``n_bytes`` (:func:`scored_bytes`),
    ``greedy_correct`` and ``tokenizer`` (the fingerprint of the ``tokenizer`` the ids come from) added."""
    model.eval()
    T = model.context_length
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
    out["n_bytes"] = scored_bytes(frame, [t for _, t in pairs], tokenizer)
    out["greedy_correct"] = greedy
    out["tokenizer"] = None if tokenizer is None else tokenizer.fingerprint
    return out


def per_sample(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per test example: gold loss, token and byte counts, tokenizer, and ``correct`` (NaN where
    undefined)."""
    gold = scores[scores["is_gold"]].set_index("example_id").sort_index()
    out = gold[[c for c in ("loss", "n_tokens", "n_bytes", "tokenizer") if c in gold]].copy()
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


def evaluate_test_sets(
    model, tokenizer, tests: list[str], paths: list[str], outputs: list[str], batch_size: int, device,
    retokenised: bool = False,
) -> None:  # fmt: skip
    """Per-sample losses (:func:`per_sample`) of ``model`` on each test set (``paths``), written to
    ``outputs`` and logged; ``tokenizer`` made the ids, or with ``retokenised`` tokenises the text first
    (a model with its own tokenizer, :func:`retokenise`)."""
    for test, src, dst in zip(tests, paths, outputs):
        frame = retokenise(load_parquet(src), tokenizer, src) if retokenised else load_parquet(src)
        table = per_sample(candidate_scores(model, frame, batch_size, device, tokenizer))
        logging.info("%s: mean loss %.4f, accuracy %s", test, table["loss"].mean(), table["correct"].mean())
        save_parquet(table, dst)
