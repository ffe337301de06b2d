"""GPT family: closed-form parameter counts, FLOPs, ALiBi, causality."""

import math

import pytest
import torch

from proxyscale.models.architecture import GPTConfig, count_parameters, training_flops
from proxyscale.models.gpt import GPT, alibi_bias, biased_attention


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("position", ["alibi", "learned"])
@pytest.mark.parametrize("d, layers, heads", [(8, 1, 2), (12, 2, 4), (64, 3, 8)])
def test_parameter_count_matches_module(position, d, layers, heads, bias):
    cfg = GPTConfig(
        vocab_size=257, context_length=32, d_model=d, n_layers=layers, n_heads=heads, position=position, bias=bias
    )
    model = GPT(cfg)
    assert count_parameters(cfg) == sum(p.numel() for p in model.parameters())
    assert any(name.endswith(".bias") for name, _ in model.named_parameters()) == bias
    embeddings = 257 * d + (32 * d if position == "learned" else 0)
    assert count_parameters(cfg, include_embeddings=False) == count_parameters(cfg) - embeddings


def test_flops_are_six_n_d():
    assert training_flops(1000, 20_000) == 6 * 1000 * 20_000


def test_bad_architecture_is_rejected():
    with pytest.raises(ValueError, match="not divisible"):
        GPTConfig(257, 32, 10, 1, 3)
    with pytest.raises(ValueError, match="position"):
        GPTConfig(257, 32, 8, 1, 2, position="rope")


def test_alibi_bias_is_causal_and_recency_weighted():
    bias = alibi_bias(4, 5)
    assert bias.shape == (4, 5, 5)
    assert torch.isinf(bias[:, 0, 1:]).all() and (bias[:, 4, 4] == 0).all()
    assert math.isclose(bias[0, 3, 1].item(), -2 * 2**-2)
    assert (bias[0, 4, :4] < bias[0, 4, 1:5]).all()


@pytest.mark.parametrize("position", ["alibi", "learned"])
def test_future_tokens_do_not_change_past_logits(position):
    torch.manual_seed(0)
    model = GPT(GPTConfig(257, 16, 16, 2, 4, position)).eval()
    x = torch.randint(0, 257, (2, 16))
    y = x.clone()
    y[:, 10:] = torch.randint(0, 257, (2, 6))
    with torch.no_grad():
        a, b = model(x), model(y)
    assert torch.allclose(a[:, :10], b[:, :10], atol=1e-5)
    assert not torch.allclose(a[:, 10:], b[:, 10:])


def test_cpu_alibi_attention_matches_sdpa():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 4, 12, 8) for _ in range(3))
    bias = alibi_bias(4, 12)
    fused = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    assert torch.allclose(biased_attention(q, k, v, bias), fused, atol=1e-5)


def test_too_long_sequence_is_a_clear_error():
    model = GPT(GPTConfig(257, 8, 8, 1, 2))
    with pytest.raises(ValueError, match="exceeds context_length=8"):
        model(torch.zeros(1, 9, dtype=torch.long))


def test_alibi_slopes_follow_the_alibi_papers_rule_for_any_head_count():
    """Powers of two: 2^(-8 h / n); otherwise the closest smaller power of two's slopes, then every other
    slope of twice that count (Press et al.'s get_slopes, which MPT computes as interleaved halves)."""
    from proxyscale.models.gpt import alibi_slopes

    assert alibi_slopes(4).tolist() == [2.0**-2, 2.0**-4, 2.0**-6, 2.0**-8]
    assert alibi_slopes(8).log2().tolist() == [-1.0, -2.0, -3.0, -4.0, -5.0, -6.0, -7.0, -8.0]
    twelve = [-1.0, -2.0, -3.0, -4.0, -5.0, -6.0, -7.0, -8.0, -0.5, -1.5, -2.5, -3.5]
    assert alibi_slopes(12).log2().tolist() == twelve
    assert alibi_slopes(5).log2().tolist() == [-2.0, -4.0, -6.0, -8.0, -1.0]
    assert alibi_bias(12, 3)[:, 2, 0].tolist() == pytest.approx([-2 * 2.0**e for e in twelve])  # the bias uses them
