"""The memory model against what autograd really keeps, and the micro-batch ``auto`` chooses.

On CPU the activations the model predicts are checked against the bytes of every tensor autograd
saves for the backward pass (``torch.autograd.graph.saved_tensors_hooks``; views share one storage,
which is counted once; parameters are not activations), for configurations that differ in attention
(ALiBi's plain softmax, a fused kernel), depth, width, vocabulary, checkpointing and logits chunking,
each at two batch sizes.
"""

from __future__ import annotations

import pytest
import torch

from proxyscale import losses
from proxyscale.errors import ConfigError
from proxyscale.models.architecture import GPTConfig, count_parameters
from proxyscale.models.gpt import GPT
from proxyscale.training.distributed import Group
from proxyscale.training.memory import GIB, MARGIN, choose, recipe_for, training_memory


def saved_bytes(cfg: GPTConfig, batch: int, checkpointing: bool = False) -> int:
    """Bytes of the distinct storages autograd saves in one training forward pass (parameters excluded)."""
    torch.manual_seed(0)
    model = GPT(cfg)
    model.checkpoint_blocks = checkpointing
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in params:
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    tokens = torch.randint(0, cfg.vocab_size, (batch, cfg.context_length + 1))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model(tokens[:, :-1], targets=tokens[:, 1:]).sum()
    return sum(storages.values())


CONFIGS = {
    "alibi, plain softmax": (GPTConfig(257, 64, 32, 2, 4), False),
    "learned positions, fused kernel": (GPTConfig(300, 32, 48, 3, 6, "learned"), True),
    "larger vocabulary": (GPTConfig(5000, 128, 64, 2, 4), False),
}


@pytest.mark.parametrize("checkpointing", [False, True])
@pytest.mark.parametrize("name", CONFIGS)
def test_predicted_activations_are_within_15_percent_of_what_autograd_saves(name, checkpointing):
    cfg, fused = CONFIGS[name]
    for batch in (2, 8):
        estimate = training_memory(cfg, batch, mixed=False, fused_attention=fused, checkpointing=checkpointing)
        counted = saved_bytes(cfg, batch, checkpointing)
        predicted = estimate.activations + estimate.logits
        print(f"{name}, checkpointing {checkpointing}, batch {batch}: {predicted:,} predicted, {counted:,} saved")
        assert predicted == pytest.approx(counted, rel=0.15)


def test_a_chunked_loss_keeps_what_the_model_predicts(monkeypatch):
    cfg = GPTConfig(5000, 128, 64, 2, 4)
    monkeypatch.setattr(losses, "LOGIT_CHUNK_ENTRIES", 5000 * 100)  # 100 tokens' logits at a time
    for batch in (2, 8):
        estimate = training_memory(cfg, batch, mixed=False, fused_attention=False, chunk_entries=5000 * 100)
        assert estimate.activations + estimate.logits == pytest.approx(saved_bytes(cfg, batch), rel=0.15)
    whole = training_memory(cfg, 8, mixed=False, fused_attention=False)
    assert whole.logits > 4 * 5000 * 8 * 128  # unchunked, the batch's fp32 log-probabilities are kept


def test_the_fixed_parts_count_weights_gradients_and_adam():
    cfg = GPTConfig(50304, 2048, 1536, 24, 16)
    p = count_parameters(cfg)
    mixed = training_memory(cfg, 1, mixed=True, fused_attention=True)
    assert (mixed.weights, mixed.gradients, mixed.optimizer, mixed.weight_copies) == (4 * p, 4 * p, 8 * p, 2 * p)
    # 38 d + 4 h + 16 bytes per token and layer with bf16 and a fused kernel
    per_layer = (38 * 1536 + 4 * 16 + 16) * 2048
    bias = 16 * 2048 * 2048 * 2
    assert mixed.activations == 24 * per_layer + bias + (8 + 4 * 1536 + 8) * 2048


def test_auto_takes_the_largest_micro_batch_that_fits_and_checkpoints_only_when_nothing_else_fits():
    cfg = GPTConfig(50304, 2048, 1536, 24, 16)  # the paper's 760M reference

    def usable(micro, ckpt):
        return training_memory(cfg, micro, True, True, ckpt).total

    capacity = 80 * GIB
    choice = choose(cfg, 32, capacity, mixed=True, fused_attention=True)
    assert not choice.activation_checkpointing
    micro = choice.micro_batch_size
    assert usable(micro, False) <= capacity * (1 - MARGIN) < usable(micro + 1, False)
    small = usable(1, False) * 0.9 / (1 - MARGIN)  # too small for one sequence without checkpointing
    tight = choose(cfg, 32, small, mixed=True, fused_attention=True)
    assert tight.activation_checkpointing and tight.micro_batch_size >= 1
    fixed = choose(cfg, 32, capacity, True, True, micro_batch_size=4, activation_checkpointing=False)
    assert (fixed.micro_batch_size, fixed.activation_checkpointing) == (4, False)
    with pytest.raises(ConfigError, match=r"^sizes.760m: one sequence of 2048 tokens needs about [\d.]+ GiB"):
        choose(cfg, 32, 10 * GIB, True, True, where="sizes.760m")


def test_a_cpu_run_takes_its_whole_share_at_once_when_memory_allows():
    size = {"d_model": 16, "n_layers": 1, "n_heads": 4, "batch_size": 8, "lr": 0.01}
    recipe, choice = recipe_for(size, {}, GPTConfig(257, 32, 16, 1, 4), torch.device("cpu"), Group(0, 2), "sizes.s")
    assert recipe.micro_batch_size == choice.micro_batch_size == 4 and not recipe.activation_checkpointing
    vision_size = {"width": 2, "batch_size": 8, "lr": 0.1, "micro_batch_size": 2}
    vision, none = recipe_for(vision_size, {}, None, None, Group(), "x")
    assert vision.micro_batch_size == 2 and none is None


def test_the_head_weight_gradient_and_nccls_buffers_are_counted():
    """Known answers: the backward of the output head holds its weight gradient (V x d in the compute
    dtype, its fp32 cast and the fp32 sum over chunks) beside a logits chunk; a process of a group on
    GPUs holds NCCL's buffers; neither a single process nor a CPU group does."""
    from proxyscale.training.memory import CUDA_RESERVE, NCCL_RESERVE

    cfg = GPTConfig(5000, 64, 32, 1, 4)
    tokens = 2 * 64
    one = training_memory(cfg, 2, mixed=False, fused_attention=False)  # fits one logits chunk
    head = tokens * 5000 * (4 + 4) + (4 + 4 + 4) * 5000 * 32  # the logits' gradient and its copy, the weight's
    assert one.transient == head + 2 * 4 * 4 * 32 * tokens and one.communication == 0
    gpu = training_memory(cfg, 2, mixed=True, fused_attention=True, world=2)
    assert gpu.communication == NCCL_RESERVE and gpu.transient - CUDA_RESERVE == (
        tokens * 5000 * (4 + 2) + (2 + 4 + 4) * 5000 * 32 + 2 * 4 * 4 * 32 * tokens
    )
    assert training_memory(cfg, 2, mixed=False, fused_attention=False, world=2).communication == 0  # gloo
