"""The one next-token loss: what training, TRAK scoring and evaluation all use."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from proxyscale.training.losses import masked_mean, token_nll


def test_token_nll_is_the_negative_log_probability_of_each_target():
    torch.manual_seed(0)
    logits, targets = torch.randn(3, 5, 11), torch.randint(0, 11, (3, 5))
    expected = -F.log_softmax(logits, -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    assert torch.equal(token_nll(logits, targets), expected)


def test_its_mean_trains_exactly_like_pytorchs_mean_cross_entropy():
    torch.manual_seed(0)
    logits, targets = torch.randn(4, 16, 257, requires_grad=True), torch.randint(0, 257, (4, 16))
    token_nll(logits, targets).mean().backward()
    ours = logits.grad.clone()
    logits.grad = None
    F.cross_entropy(logits.reshape(-1, 257), targets.reshape(-1)).backward()
    assert torch.equal(ours, logits.grad)


def test_masked_mean_averages_marked_positions_per_row():
    values = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    mask = torch.tensor([[True, False, True], [False, False, False]])
    assert masked_mean(values, mask).tolist() == [2.0, 0.0]
