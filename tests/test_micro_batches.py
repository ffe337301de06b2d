"""Micro-batches and the chunked loss change memory, not what is computed: a global batch taken in k
micro-batches (alone and under 2-process gloo DDP), or with its logits a chunk at a time, trains the
same model as one pass over it, up to float rounding.

Tolerances: loss curves agree to 1e-6 (they are means of thousands of float32 terms summed in another
order); weights to 5e-4 (about 0.1% of their scale) after 168 AdamW steps: AdamW divides each update
by the root of the gradient's second moment, so where a gradient is tiny its rounding is amplified
(measured: 2e-5 with micro-batches of 3, 1.6e-4 with micro-batches of 1, in a key projection's
weights). The attention's key bias is left out: its gradient is zero in exact arithmetic (softmax
ignores a constant added to every key), so its float32 gradient is pure rounding, which AdamW turns
into full-size steps whatever the batching.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from conftest import MNIST
from proxyscale import losses
from proxyscale.attribution.dataset import vision_dataset
from proxyscale.datamodels.examples import Arrays
from proxyscale.datamodels.tasks import LMTask, make_task
from proxyscale.models.architecture import GPTConfig
from proxyscale.training.distributed import Group
from proxyscale.training.fit import fit
from proxyscale.training.lm import train_lm
from proxyscale.training.recipe import Recipe

CPU = torch.device("cpu")
CFG = GPTConfig(257, 32, 16, 2, 4)
STREAM = ((np.arange(30_000) * 7 + np.random.default_rng(0).integers(0, 3, 30_000)) % 257).astype(np.uint16)


def _weights_gap(a: torch.nn.Module, b: torch.nn.Module) -> float:
    """Largest weight difference, the key bias (zero gradient in exact arithmetic) left out."""
    gaps = []
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        if name.endswith("qkv.bias"):
            d = x.shape[0] // 3
            x, y = torch.cat([x[:d], x[2 * d :]]), torch.cat([y[:d], y[2 * d :]])
        gaps.append((x - y).abs().max().item())
    return max(gaps)


SINGLE = Group()


def _train(micro=None, group=SINGLE, tokens_per_param=4):
    recipe = Recipe(batch_size=8, lr=0.01, micro_batch_size=micro, log_every=5)
    return train_lm({"s": STREAM}, {"s": 1}, CFG, recipe, tokens_per_param, 0, CPU, group=group)


@pytest.fixture(scope="module")
def one_pass():
    model, curve, meta = _train()
    assert meta["steps"] > 100 and curve["loss"].iloc[-1] < curve["loss"].iloc[0] - 1  # it learned
    return model, curve


@pytest.mark.parametrize("micro", [1, 3])
def test_micro_batches_train_the_same_language_model_as_one_pass(one_pass, micro):
    model, curve = one_pass
    other, other_curve, meta = _train(micro)
    assert meta["micro_batch_size"] == micro
    np.testing.assert_allclose(other_curve["loss"], curve["loss"], rtol=0, atol=1e-6)
    assert _weights_gap(model, other) < 5e-4


def test_the_loss_a_chunk_of_logits_at_a_time_trains_the_same_model(one_pass, monkeypatch):
    model, curve = one_pass
    monkeypatch.setattr(losses, "LOGIT_CHUNK_ENTRIES", 257 * 24)  # 24 tokens' logits at a time, of 256
    other, other_curve, _ = _train()
    np.testing.assert_allclose(other_curve["loss"], curve["loss"], rtol=0, atol=1e-6)
    assert _weights_gap(model, other) < 5e-4


def test_the_chunked_head_gives_the_same_values_and_gradients_and_never_holds_all_logits():
    from torch.utils._python_dispatch import TorchDispatchMode

    torch.manual_seed(0)
    hidden = torch.randn(4, 30, 8, requires_grad=True)
    weight = torch.randn(50, 8, requires_grad=True)
    targets = torch.randint(0, 50, (4, 30))
    whole = losses.per_token_head(losses.token_nll, hidden, weight, targets, chunk_entries=10**9)
    expected = losses.token_nll(hidden @ weight.T, targets)
    assert torch.equal(whole, expected)  # one chunk: exactly the plain loss
    whole.sum().backward()
    grads = hidden.grad.clone(), weight.grad.clone()
    hidden.grad = weight.grad = None

    class Largest(TorchDispatchMode):
        size = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in out if isinstance(out, (tuple, list)) else [out]:
                if isinstance(t, torch.Tensor):
                    Largest.size = max(Largest.size, t.numel())
            return out

    with Largest():
        chunked = losses.per_token_head(losses.token_nll, hidden, weight, targets, chunk_entries=50 * 16)
        chunked.sum().backward()
    torch.testing.assert_close(chunked, expected, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(hidden.grad, grads[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(weight.grad, grads[1], rtol=1e-5, atol=1e-6)
    assert Largest.size <= max(50 * 16, hidden.numel()) < 4 * 30 * 50  # none near the batch's logits


@pytest.mark.parametrize("setting", ["vision", "lm"])
def test_micro_batches_fit_the_same_model(setting):
    if setting == "vision":
        arrays, spec = vision_dataset(MNIST, n_train=60, n_targets=0, seed=0)
        task, size = make_task(spec), {"width": 2}
        examples = Arrays(arrays["train_inputs"], arrays["train_labels"])
    else:
        tokens = np.random.default_rng(0).integers(0, 20, (60, 9))
        mask = np.ones_like(tokens, dtype=bool)
        mask[:, 0] = False
        task, size, examples = LMTask(20, 8), {"d_model": 8, "n_layers": 1, "n_heads": 2}, Arrays(tokens, mask)

    def run(micro):
        recipe = Recipe(batch_size=10, lr=0.01, micro_batch_size=micro)
        return fit(task, size, examples, np.arange(60), recipe, 3, 0, CPU)

    (a, meta_a), (b, meta_b) = run(None), run(3)
    assert meta_a["final_loss"] == pytest.approx(meta_b["final_loss"], abs=1e-6)
    assert _weights_gap(a, b) < 5e-4


def _ddp_rank(rank: int, world: int, init: str, out: str) -> None:
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        model, curve, _ = _train(micro=2, group=Group(rank, world), tokens_per_param=2)
        if rank == 0:
            torch.save({"state": model.state_dict(), "loss": curve["loss"].tolist()}, out)
    finally:
        torch.distributed.destroy_process_group()


def test_two_processes_with_micro_batches_train_the_same_model_as_one_pass(tmp_path):
    out = tmp_path / "ddp.pt"
    init = f"file://{tmp_path / 'rendezvous'}"
    mp.spawn(_ddp_rank, args=(2, init, str(out)), nprocs=2, join=True)
    ddp = torch.load(out, weights_only=True)
    model, curve, _ = _train(tokens_per_param=2)
    np.testing.assert_allclose(ddp["loss"], curve["loss"], rtol=0, atol=1e-5)
    other = type(model)(CFG)
    other.load_state_dict(ddp["state"])
    assert _weights_gap(model, other) < 5e-4


def test_collectives_use_the_tensors_of_the_backends_device(monkeypatch):
    """NCCL reduces only CUDA tensors: a group on cuda:N must hand every collective a tensor there.
    A fake all_reduce records the device it gets (``meta`` stands in for a GPU here)."""
    seen = []

    class Stop(Exception):
        pass

    def all_reduce(tensor, *args, **kwargs):
        seen.append(tensor.device)
        raise Stop

    monkeypatch.setattr(torch.distributed, "all_reduce", all_reduce)
    group = Group(rank=0, world=2, device="meta")
    with pytest.raises(Stop):
        group.mean(1.5)
    with pytest.raises(Stop):
        group.sum(torch.zeros(2))
    assert seen == [torch.device("meta")] * 2


def test_joining_a_gpu_group_puts_its_collectives_on_the_local_gpu(monkeypatch):
    from proxyscale.training import distributed

    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    backends = []
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: None)
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: False)
    monkeypatch.setattr(torch.distributed, "init_process_group", lambda backend: backends.append(backend))
    monkeypatch.setattr(torch.distributed, "new_group", lambda backend: f"{backend} group")
    group, device = distributed.join(torch.device("cuda"))
    assert backends == ["nccl"] and device == torch.device("cuda", 1)
    # NCCL reduces only CUDA tensors: the host-side agreement (stop signals, save times) has its gloo group
    assert group == Group(rank=1, world=2, device="cuda:1", host="gloo group")
    assert os.environ["LOCAL_RANK"] == "1"


@pytest.mark.parametrize("micro", [None, 4])
def test_the_loss_fit_reports_is_the_mean_loss_over_the_examples(micro):
    """Known answer: with a learning rate too small to move the weights, the reported loss of the last
    pass is the fresh model's mean cross-entropy over all scored tokens, computed here directly."""
    tokens = np.random.default_rng(1).integers(0, 20, (30, 9))
    mask = np.ones_like(tokens, dtype=bool)
    mask[:, 0] = False
    mask[::2, :4] = False  # rows score different numbers of tokens: a mean over tokens, not over rows
    task, size = LMTask(20, 8), {"d_model": 8, "n_layers": 1, "n_heads": 2}
    recipe = Recipe(batch_size=30, lr=1e-12, micro_batch_size=micro)
    model, meta = fit(task, size, Arrays(tokens, mask), np.arange(30), recipe, 1, 0, CPU)
    with torch.no_grad():
        x = torch.from_numpy(tokens)
        nll = losses.token_nll(model(x[:, :-1]), x[:, 1:])
    expected = nll[torch.from_numpy(mask[:, 1:])].double().mean().item()
    assert meta["final_loss"] == pytest.approx(expected, rel=1e-6)


def test_flex_attention_with_an_alibi_score_modifier_is_the_same_attention():
    """FlexAttention has no CPU backward: its forward is checked here, training with it needs a GPU."""
    from proxyscale.errors import ConfigError
    from proxyscale.models.gpt import GPT

    torch.manual_seed(0)
    model = GPT(CFG).eval()
    tokens = torch.randint(0, 257, (3, 33))
    with torch.no_grad():
        sdpa = model(tokens[:, :-1], targets=tokens[:, 1:])
        model.attention = "flex"
        flex = model(tokens[:, :-1], targets=tokens[:, 1:])
    torch.testing.assert_close(flex, sdpa, rtol=1e-5, atol=1e-5)
    with pytest.raises(ConfigError, match="^training.attention: flex trains on GPUs only"):
        train_lm({"s": STREAM}, {"s": 1}, CFG, Recipe(8, 0.01, attention="flex"), 1, 0, CPU)


def test_compile_compiles_the_model_in_place_so_checkpoints_keep_their_names(monkeypatch):
    """torch.compile itself takes about 30 s per model on these CPUs, so only the wiring is checked here:
    the recipe's ``compile`` compiles the model the loop trains, in place."""
    from proxyscale.models.gpt import GPT

    compiled = []
    monkeypatch.setattr(GPT, "compile", lambda self: compiled.append(self))
    model, _, _ = train_lm({"s": STREAM}, {"s": 1}, CFG, Recipe(8, 0.01, compile=True), 0.5, 0, CPU)
    assert compiled == [model] and "tok.weight" in model.state_dict()


def _fit_mnist(group=SINGLE, micro=None):
    arrays, spec = vision_dataset(MNIST, 120, 10, seed=0)
    task = make_task(spec)
    recipe = Recipe(batch_size=20, lr=0.01, micro_batch_size=micro)
    examples = Arrays(arrays["train_inputs"], arrays["train_labels"])
    return fit(task, {"width": 2}, examples, np.arange(120), recipe, 2, 0, CPU, group=group)


def _ddp_fit_rank(rank: int, world: int, init: str, out: str) -> None:
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        model, meta = _fit_mnist(Group(rank, world), micro=4)
        if rank == 0:
            torch.save({"state": model.state_dict(), "loss": meta["final_loss"]}, out)
    finally:
        torch.distributed.destroy_process_group()


def test_two_processes_fit_the_same_model_as_one(tmp_path):
    """fit (the datamodel checkpoints, LDS subsets and retrains) under 2-process gloo DDP with
    micro-batches: each process takes its share of every batch; the model is one process's."""
    out = tmp_path / "ddp_fit.pt"
    mp.spawn(_ddp_fit_rank, args=(2, f"file://{tmp_path / 'rendezvous'}", str(out)), nprocs=2, join=True)
    ddp = torch.load(out, weights_only=True)
    model, meta = _fit_mnist()
    assert ddp["loss"] == pytest.approx(meta["final_loss"], abs=1e-5)
    for name, value in model.state_dict().items():
        torch.testing.assert_close(ddp["state"][name], value, rtol=0, atol=5e-4, msg=name)


def test_a_restored_step_runner_continues_as_the_uninterrupted_one():
    """What a resumed run restores (the loss window since the last read and AdamW's moments and step
    counts) makes its next steps and reads the same as the run that never stopped."""
    import copy

    from proxyscale.training.loop import Steps
    from proxyscale.training.recipe import make_optimizer

    def runner(model):
        recipe = Recipe(batch_size=4, lr=0.1)
        return Steps(model, make_optimizer(model, recipe), recipe, Group(), CPU, "test")

    torch.manual_seed(0)
    x = torch.randn(4, 3)
    model = torch.nn.Linear(3, 2)
    steps = runner(model)
    for _ in range(3):
        steps.step([lambda: model(x).pow(2).sum()], lr=0.1)
    saved, weights = copy.deepcopy(steps.state()), copy.deepcopy(model.state_dict())
    assert saved["window_steps"] == 3 and saved["opt"]["state"][0][0][2].item() == 3  # AdamW's step count
    resumed_model = torch.nn.Linear(3, 2)
    resumed_model.load_state_dict(weights)
    resumed = runner(resumed_model)
    resumed.restore(saved)
    for run, m in ((steps, model), (resumed, resumed_model)):
        run.step([lambda m=m: m(x).pow(2).sum()], lr=0.1)
    assert torch.equal(model.weight, resumed_model.weight) and torch.equal(model.bias, resumed_model.bias)
    assert resumed.read(4, 0.1) == steps.read(4, 0.1)


def test_micro_slices_cover_every_row_once_in_order_in_at_most_two_sizes():
    from proxyscale.training.loop import micro_slices

    assert micro_slices(5, 2) == [slice(0, 2), slice(2, 4), slice(4, 5)]
    assert micro_slices(1, 1) == [slice(0, 1)] and micro_slices(3, None) == [slice(0, 3)]
    assert micro_slices(4, 0) == [slice(i, i + 1) for i in range(4)]  # a micro-batch holds at least one row
    assert micro_slices(100, 30) == [slice(0, 25), slice(25, 50), slice(50, 75), slice(75, 100)]  # not 30+30+30+10
    assert [s.stop - s.start for s in micro_slices(7, 3)] == [3, 2, 2]
    for rows in range(1, 70):
        for micro in range(1, rows + 1):
            sizes = [s.stop - s.start for s in micro_slices(rows, micro)]
            assert sum(sizes) == rows and max(sizes) <= micro and max(sizes) - min(sizes) <= 1
            assert len(sizes) == -(-rows // micro)  # as few as the micro-batch allows


def test_flex_attention_is_prepared_on_a_gpu_device():
    """Only the device's type decides (no CUDA is needed to check it): flex is refused on the CPU and
    set on the model for a CUDA device."""
    from proxyscale.errors import ConfigError
    from proxyscale.models.gpt import GPT
    from proxyscale.training.loop import prepare

    model = GPT(CFG)
    prepare(model, Recipe(8, 0.01, attention="flex", activation_checkpointing=True), torch.device("cuda"))
    assert model.attention == "flex" and model.checkpoint_blocks is True
    with pytest.raises(ConfigError, match="^training.attention: flex trains on GPUs only"):
        prepare(GPT(CFG), Recipe(8, 0.01, attention="flex"), CPU)


def test_the_step_runner_reads_the_mean_loss_per_step_since_its_last_read():
    """Losses are summed on the training device (no host sync per step) in float64, so a read is the
    exact mean of the steps since the last one; a loss that is no longer finite names the run, the
    step and the learning rate."""
    from proxyscale.errors import TrainingError
    from proxyscale.training.loop import Steps
    from proxyscale.training.recipe import make_optimizer

    model = torch.nn.Linear(1, 1)
    recipe = Recipe(batch_size=1, lr=0.0)

    def runner(device=CPU):
        return Steps(model, make_optimizer(model, recipe), recipe, Group(), device, "s/m")

    def constant(value):  # a loss of exactly ``value`` with a gradient
        return lambda: model.weight.sum() * 0 + value

    assert runner(torch.device("meta")).window.device.type == "meta"
    steps = runner()
    for value in (2.0**24, 1.0):
        steps.step([constant(value)], lr=0.0)
    assert steps.read(2, 0.0) == (2.0**24 + 1) / 2  # 2^24 + 1 is not a float32
    steps.step([constant(3.0)], lr=0.0)
    assert steps.read(3, 0.0) == 3.0  # the window restarts at each read
    steps.step([constant(float("nan"))], lr=0.0)
    with pytest.raises(TrainingError, match=r"^s/m step 4: loss became nan at learning rate 0.5; lower"):
        steps.read(4, 0.5)


def _preset_micro_batch_shapes() -> dict[str, set[int]]:
    """Rows per micro-batch of every language-model size of the paper preset, trained on one 80 GB card
    (its auto micro-batch, as a job there picks it)."""
    import yaml

    from conftest import REPO, validated
    from proxyscale.plan import CARD_BYTES
    from proxyscale.training.loop import micro_slices
    from proxyscale.training.memory import choose

    config = validated(yaml.safe_load((REPO / "configs/paper_lm.yaml").read_text()))
    vocab = config["tokenizer"]["vocab_size"]
    blocks = {"sizes": (config["sizes"], config["model"]["context_length"]),
              "attribution": (config["attribution"]["lm"]["sizes"], config["attribution"]["lm"]["context_length"]),
              "selection": (config["selection"]["sizes"], config["selection"]["context_length"])}  # fmt: skip
    shapes = {}
    for block, (sizes, context) in blocks.items():
        for name, size in sizes.items():
            cfg = GPTConfig.from_size(size, vocab, context)
            micro = choose(cfg, size["batch_size"], CARD_BYTES[80], True, True).micro_batch_size
            shapes[f"{block}.{name}"] = {s.stop - s.start for s in micro_slices(size["batch_size"], micro)}
    return shapes


def test_compiled_flex_attention_is_alibi_and_compiles_once_over_every_preset_micro_batch_shape():
    """The paper preset's sizes train in micro-batches of at most two shapes each; a model's own compiled
    FlexAttention (dynamic over the batch) runs all of them, every size's, with at most two compilations
    (dynamo's counters; torch recompiles a function at most 8 times before falling back to eager flex,
    which builds the whole B x H x T x T scores), and equals the explicit ALiBi attention."""
    import torch._dynamo
    from torch._dynamo.utils import counters

    from proxyscale.models.gpt import GPT

    shapes = _preset_micro_batch_shapes()
    assert all(len(s) <= 2 for s in shapes.values()), shapes
    rows = sorted(set().union(*shapes.values()))
    assert len(rows) > 2  # the sizes together give more shapes than two: a graph per shape would be more
    torch._dynamo.reset()
    counters.clear()
    torch.manual_seed(0)
    model = GPT(GPTConfig(40, 16, 24, 1, 12)).eval()  # 12 heads: slopes of a head count not a power of two
    compiled = GPT(model.cfg).eval()
    compiled.load_state_dict(model.state_dict())
    compiled.attention, compiled.compile_flex = "flex", True
    with torch.no_grad():
        for b in rows:
            tokens = torch.randint(0, 40, (b, 16), generator=torch.Generator().manual_seed(b))
            torch.testing.assert_close(compiled(tokens), model(tokens), rtol=1e-5, atol=1e-5)
    assert 1 <= counters["stats"]["unique_graphs"] <= 2, dict(counters["stats"])


def test_flex_attention_runs_inside_a_compiled_model():
    """With training.compile, dynamo traces the model into the attention: the batch-dimension marking
    (which dynamo may not trace) is skipped there, and the compiled model's flex attention still equals
    SDPA's over several batch shapes (the eager backend here: the trace is what is checked)."""
    import torch._dynamo

    from proxyscale.models.gpt import GPT

    torch._dynamo.reset()
    torch.manual_seed(0)
    reference = GPT(GPTConfig(40, 16, 24, 1, 4)).eval()
    model = GPT(reference.cfg).eval()
    model.load_state_dict(reference.state_dict())
    model.attention, model.compile_flex = "flex", True
    model.compile(backend="eager")
    with torch.no_grad():
        for b in (2, 3, 5):
            tokens = torch.randint(0, 40, (b, 16), generator=torch.Generator().manual_seed(b))
            torch.testing.assert_close(model(tokens), reference(tokens), rtol=1e-5, atol=1e-5)
