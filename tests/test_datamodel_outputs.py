"""The language-model output function for TRAK: margins and its gradient."""

import math

import torch

from proxyscale.datamodels.outputs import LMMarginOutput
from proxyscale.losses import token_margins
from proxyscale.models.architecture import GPTConfig
from proxyscale.models.gpt import GPT


def test_margin_is_log_odds_of_the_true_token():
    logits = torch.tensor([[2.0, 0.5, -1.0]])
    p = torch.softmax(logits, -1)[0, 0].item()
    assert math.isclose(token_margins(logits, torch.tensor([0])).item(), math.log(p / (1 - p)), rel_tol=1e-6)


def _tiny():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=11, context_length=6, d_model=8, n_layers=1, n_heads=2)).double().eval()
    weights = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}
    tokens = torch.tensor([3, 1, 4, 1, 5, 9, 2])
    mask = torch.tensor([False, False, False, True, True, True, True])
    return model, weights, buffers, tokens, mask


def test_output_gradient_matches_finite_differences():
    model, weights, buffers, tokens, mask = _tiny()
    out = LMMarginOutput()
    params = {k: v.clone().requires_grad_(True) for k, v in weights.items()}
    value = out.get_output(model, params, buffers, tokens, mask)
    grads = torch.autograd.grad(value, list(params.values()))
    rng = torch.Generator().manual_seed(1)
    eps = 1e-6
    for (name, w), g in zip(weights.items(), grads):
        for _ in range(3):
            idx = tuple(torch.randint(0, s, (1,), generator=rng).item() for s in w.shape)
            plus, minus = dict(weights), dict(weights)
            plus[name], minus[name] = w.clone(), w.clone()
            plus[name][idx] += eps
            minus[name][idx] -= eps
            numeric = (
                out.get_output(model, plus, buffers, tokens, mask) - out.get_output(model, minus, buffers, tokens, mask)
            ) / (2 * eps)
            assert math.isclose(g[idx].item(), numeric.item(), rel_tol=1e-4, abs_tol=1e-7), name


def test_output_averages_scored_tokens_only_and_q_is_one_minus_p():
    model, weights, buffers, tokens, mask = _tiny()
    out = LMMarginOutput()
    with torch.no_grad():
        logits = model(tokens[:-1].unsqueeze(0))[0]
        margins = token_margins(logits, tokens[1:])
        p = torch.softmax(logits, -1).gather(-1, tokens[1:, None]).squeeze(-1)
        value = out.get_output(model, weights, buffers, tokens, mask)
        q = out.get_out_to_loss_grad(model, weights, buffers, (tokens[None], mask[None]))
    assert torch.isclose(value, margins[2:].mean())
    assert q.shape == (1, 1) and torch.isclose(q[0, 0], (1 - p[2:]).mean())


def test_traker_featurizes_and_scores_with_the_lm_output(tmp_path):
    import numpy as np
    from trak import TRAKer
    from trak.projectors import ProjectionType

    from proxyscale.datamodels.projectors import CPUProjector

    torch.manual_seed(0)
    model = GPT(GPTConfig(257, 16, 8, 1, 2)).eval()
    n = 48  # more examples than projected dimensions, so the feature Gram matrix is well conditioned
    tokens = torch.randint(0, 257, (n, 17))
    mask = torch.ones_like(tokens, dtype=torch.bool)
    mask[:, 0] = False
    n_params = sum(p.numel() for p in model.parameters())
    projector = CPUProjector(grad_dim=n_params, proj_dim=16, seed=0, proj_type=ProjectionType.rademacher, device="cpu")
    traker = TRAKer(
        model=model,
        task=LMMarginOutput(),
        train_set_size=n,
        save_dir=str(tmp_path / "store"),
        device="cpu",
        projector=projector,
        proj_dim=16,
    )
    traker.load_checkpoint(model.state_dict(), model_id=0)
    for i in range(0, n, 16):  # in batches, as the workflow featurizes
        traker.featurize(batch=(tokens[i : i + 16], mask[i : i + 16]), num_samples=16)
    traker.finalize_features()
    traker.start_scoring_checkpoint(exp_name="self", checkpoint=model.state_dict(), model_id=0, num_targets=n)
    traker.score(batch=(tokens, mask), num_samples=n)
    scores = np.asarray(traker.finalize_scores(exp_name="self"))
    assert scores.shape == (n, n) and np.isfinite(scores).all()
    # a training sequence is its own most influential example far more often than chance (1/n)
    assert (scores.argmax(0) == np.arange(n)).mean() > 0.8
