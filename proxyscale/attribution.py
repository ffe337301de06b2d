"""TRAK glue for language models: the model output function of the paper's appendix A.2.7.

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
from trak.projectors import BasicProjector


def token_margins(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log(p / (1 - p)) of each target token: its logit minus the logsumexp of all other logits."""
    correct = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    others = logits.scatter(-1, targets.unsqueeze(-1), float("-inf")).logsumexp(-1)
    return correct - others


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask.to(values.dtype)
    return (values * weights).sum(-1) / weights.sum(-1).clamp(min=1)


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


class CPUProjector(BasicProjector):
    """traker's CPU projector, with its matrix regenerated after it was freed.

    traker 0.3.2 frees the projection matrix at the end of ``finalize_features``; a single-block
    ``BasicProjector`` then fails in ``score`` ("no attribute 'proj_matrix'") unless the model id
    changes. The matrix is regenerated from the same generator state, so scoring projects with exactly
    the matrix featurizing used.
    """

    def project(self, grads, model_id: int) -> torch.Tensor:
        if not self.proj_matrix_available and self.num_blocks == 1 and model_id == self.model_id:
            self.generate_sketch_matrix(self.generator_states[0])
        return super().project(grads, model_id)
