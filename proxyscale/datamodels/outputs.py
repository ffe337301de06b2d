"""Model outputs that TRAK attributes and LDS compares: margins log(p / (1 - p)).

Classifiers: the margin of the true class. Language models: the output function of the paper's
appendix A.2.7, for traker.

For a sequence z and weights theta, the output is the per-token margin averaged over the scored
tokens, f(z, theta) = mean_t log(p_t / (1 - p_t)), where p_t is the probability the model gives the
true next token t. The out-to-loss term Q (traker's ``get_out_to_loss_grad``) is the matching mean of
(1 - p_t), the derivative of the cross-entropy loss with respect to a token's margin.

A batch is ``(tokens, mask)``: ``tokens`` of shape (batch, T + 1) and ``mask`` marking which of the
T + 1 positions are scored as targets (position 0 never is).
"""

from __future__ import annotations

import torch
from torch.func import functional_call
from trak.modelout_functions import AbstractModelOutput

from proxyscale.losses import masked_mean, token_margins


class LMMarginOutput(AbstractModelOutput):
    """Mean per-token margin of a causal language model (appendix A.2.7) for traker."""

    def __init__(self) -> None:
        super().__init__()

    @staticmethod
    def get_output(model, weights, buffers, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """f(z, theta) for one sequence (no batch dimension), as traker's per-sample gradients need."""
        logits = functional_call(model, (weights, buffers), (tokens[:-1].unsqueeze(0),))[0]
        return masked_mean(token_margins(logits, tokens[1:]), mask[1:])

    def get_out_to_loss_grad(self, model, weights, buffers, batch) -> torch.Tensor:
        """Q for a batch: mean over scored tokens of 1 - p_t, shape (batch, 1)."""
        tokens, mask = batch
        logits = functional_call(model, (weights, buffers), (tokens[:, :-1],))
        p = torch.softmax(logits, -1).gather(-1, tokens[:, 1:].unsqueeze(-1)).squeeze(-1)
        return masked_mean(1 - p, mask[:, 1:]).detach().unsqueeze(-1)
