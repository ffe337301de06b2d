"""The one next-token loss: what training, TRAK scoring and evaluation all use."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from proxyscale.losses import (
    masked_mean,
    per_token_head,
    token_hits,
    token_margins,
    token_nll,
    token_nll_and_hit,
)


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


def test_masked_mean_divides_each_row_by_its_own_count():
    values = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    mask = torch.tensor([[True, True, True], [False, True, False]])
    assert masked_mean(values, mask).tolist() == [2.0, 5.0]


def test_margins_hits_and_the_stacked_pair_by_hand():
    """Logits (0, ln 3, 0): p(1) = 3/5, so log(p / (1 - p)) = ln 3 - ln 2; token 1 is the argmax, token 0 is not."""
    logits = torch.tensor([[[0.0, math.log(3.0), 0.0]] * 2] * 2, dtype=torch.float64)  # (batch 2, time 2, vocab 3)
    targets = torch.tensor([[1, 0], [1, 1]])
    margins = token_margins(logits, targets)
    assert margins.shape == (2, 2)
    torch.testing.assert_close(margins[0, 0].item(), math.log(1.5))
    torch.testing.assert_close(margins[0, 1].item(), -math.log(4.0))  # p(0) = 1/5: log(1/4)
    assert token_hits(logits, targets).tolist() == [[True, False], [True, True]]
    pair = token_nll_and_hit(logits, targets)
    assert pair.shape == (2, 2, 2)
    torch.testing.assert_close(pair[0, 0], torch.tensor([math.log(5 / 3), 1.0], dtype=torch.float64))
    torch.testing.assert_close(pair[0, 1], torch.tensor([math.log(5.0), 0.0], dtype=torch.float64))


def test_the_head_keeps_each_tokens_trailing_values_in_one_chunk_and_in_many():
    torch.manual_seed(0)
    hidden, weight, targets = torch.randn(2, 3, 4), torch.randn(5, 4), torch.randint(0, 5, (2, 3))
    expected = token_nll_and_hit((hidden @ weight.T).float(), targets)
    for chunk in (None, 10):  # one chunk; two tokens a chunk
        torch.testing.assert_close(per_token_head(token_nll_and_hit, hidden, weight, targets, chunk), expected)


def _saved_bytes(hidden, weight, targets, chunk_entries) -> int:
    """Bytes of the distinct storages autograd saves for the backward pass (each chunk saves a view of
    the same weight: counted once)."""
    saved = {}

    def pack(t):
        saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        per_token_head(token_nll, hidden, weight, targets, chunk_entries).sum()
    return sum(saved.values())


def test_chunks_of_a_differentiated_head_keep_no_logits_for_the_backward_pass():
    """With gradients wanted (of the hidden states or of the vocabulary's weights alone), a chunked head
    recomputes each chunk's logits in the backward pass instead of keeping them: what autograd saves is
    far below the (tokens x vocabulary) logits; under torch.func (TRAK's per-example gradients), whose
    transforms refuse saved-tensor hooks, it computes them plainly and still gives the gradient."""
    torch.manual_seed(0)
    tokens, vocab = 64, 1000
    hidden, weight, targets = torch.randn(tokens, 4), torch.randn(vocab, 4), torch.randint(0, vocab, (tokens,))
    logits_bytes = tokens * vocab * 4
    assert _saved_bytes(hidden.requires_grad_(), weight, targets, None) >= logits_bytes  # one chunk: kept
    assert _saved_bytes(hidden, weight, targets, 8 * vocab) < logits_bytes / 4
    assert _saved_bytes(hidden.detach(), weight.requires_grad_(), targets, 8 * vocab) < logits_bytes / 4
    grad = torch.func.grad(lambda h: per_token_head(token_nll, h, weight.detach(), targets, 8 * vocab).sum())(
        hidden.detach()
    )
    h = hidden.detach().requires_grad_()
    token_nll(h @ weight.detach().T, targets).sum().backward()
    torch.testing.assert_close(grad, h.grad)
