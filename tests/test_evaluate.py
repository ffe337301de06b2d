"""Per-sample losses: loss masks, truncation, accuracy definitions."""

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from proxyscale.correlation.evaluate import candidate_scores, chance_accuracy, per_sample
from proxyscale.data.prepare import fit_to_context
from proxyscale.models.architecture import GPTConfig
from proxyscale.models.gpt import GPT


def test_fit_to_context_cuts_context_from_the_left():
    ctx, cont = fit_to_context(np.arange(10), np.array([100, 101]), context_length=5)
    assert ctx.tolist() == [6, 7, 8, 9] and cont.tolist() == [100, 101]
    ctx, cont = fit_to_context(np.arange(3), np.arange(50, 60), context_length=5)
    assert ctx.tolist() == [2] and cont.tolist() == [50, 51, 52, 53, 54]


def _frame(rows, kind):
    return pd.DataFrame(
        [
            {
                "example_id": e,
                "choice": c,
                "is_gold": g,
                "kind": kind,
                "context_ids": np.array(ctx),
                "continuation_ids": np.array(cont),
            }
            for e, c, g, ctx, cont in rows
        ]
    )


def test_loss_covers_the_continuation_only():
    torch.manual_seed(0)
    model = GPT(GPTConfig(20, 8, 8, 1, 2)).eval()
    frame = _frame([(0, 0, True, [1, 2, 3], [4, 5]), (1, 0, True, [7], [8, 9, 10, 11])], "continuation")
    scores = candidate_scores(model, frame, batch_size=2, device=torch.device("cpu"))
    with torch.no_grad():
        logp = F.log_softmax(model(torch.tensor([[1, 2, 3, 4]])), -1)[0]
    expected = -(logp[2, 4] + logp[3, 5]) / 2
    assert scores["loss"][0] == pytest.approx(expected.item(), abs=1e-5)
    assert scores["n_tokens"].tolist() == [2, 4]


def test_accuracy_definitions():
    scores = pd.DataFrame(
        {
            "example_id": [0, 0, 1, 1],
            "choice": [0, 1, 0, 1],
            "is_gold": [True, False, False, True],
            "kind": "multiple_choice",
            "loss": [1.0, 2.0, 1.0, 3.0],
            "n_tokens": 3,
            "greedy_correct": False,
        }
    )
    table = per_sample(scores)
    assert table["correct"].tolist() == [1.0, 0.0] and table["loss"].tolist() == [1.0, 3.0]
    assert chance_accuracy(scores) == 0.5
    greedy = scores[scores["is_gold"]].assign(kind="greedy", greedy_correct=[True, False])
    assert per_sample(greedy)["correct"].tolist() == [1.0, 0.0] and chance_accuracy(greedy) == 0.0
    assert per_sample(greedy.assign(kind="sequence"))["correct"].isna().all()


def test_greedy_correct_when_the_model_predicts_every_token():
    torch.manual_seed(0)
    model = GPT(GPTConfig(10, 8, 8, 1, 2)).eval()
    with torch.no_grad():
        first = model(torch.tensor([[3]]))[0, -1].argmax().item()
        second = model(torch.tensor([[3, first]]))[0, -1].argmax().item()
    wrong = (first + 1) % 10
    frame = _frame([(0, 0, True, [3], [first, second]), (1, 0, True, [3], [wrong, second])], "greedy")
    scores = candidate_scores(model, frame, batch_size=4, device=torch.device("cpu"))
    assert scores["greedy_correct"].tolist() == [True, False]
