"""Training: schedule, sampling, budget, learning, determinism, checkpoints."""

import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import DATA
from proxyscale.data.prepare import iter_source, token_stream
from proxyscale.data.tokenizer import ByteTokenizer
from proxyscale.datamodels.tasks import LMTask
from proxyscale.errors import ConfigError, TrainingError
from proxyscale.models.architecture import GPTConfig, count_parameters
from proxyscale.training.lm import WindowSampler, load_lm, repetition, save_lm, train_lm
from proxyscale.training.recipe import Recipe, lr_at, make_optimizer, update


def test_lr_schedule_warms_up_then_decays():
    r = Recipe(batch_size=1, lr=1.0, warmup_frac=0.1, min_lr_frac=0.1)
    lrs = [lr_at(s, 100, r) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))
    assert lrs[-1] == pytest.approx(0.1, abs=0.01)


def test_sampler_windows_come_from_the_weighted_streams():
    streams = {"a": np.arange(100, dtype=np.uint16), "b": np.arange(1000, 1100, dtype=np.uint16)}
    s = WindowSampler(streams, {"a": 3, "b": 1}, window=9, seed=0)
    batch = s.batch(400)
    assert batch.shape == (400, 10)
    assert (batch.diff(dim=1) == 1).all()  # contiguous windows
    from_a = (batch[:, 0] < 1000).float().mean().item()
    assert 0.68 < from_a < 0.82
    again = WindowSampler(streams, {"a": 3, "b": 1}, window=9, seed=0).batch(400)
    assert torch.equal(batch, again)


def test_sampler_rejects_a_shard_shorter_than_a_window():
    with pytest.raises(ConfigError, match="shard 'a' has 5 tokens"):
        WindowSampler({"a": np.arange(5)}, {"a": 1}, window=8, seed=0)


@pytest.fixture(scope="module")
def wiki_stream():
    docs = list(iter_source([{"path": str(DATA / "train/wiki_wikitext2_raw_test.txt.xz"), "format": "wikitext"}]))
    return token_stream(docs, ByteTokenizer())


def test_tiny_model_learns_and_is_deterministic(wiki_stream, tmp_path):
    cfg = GPTConfig(257, 32, 16, 1, 4)

    def run():
        return train_lm({"w": wiki_stream}, {"w": 1}, cfg, Recipe(8, 0.01), 20, 0, torch.device("cpu"))

    model, curve, meta = run()
    assert meta["params"] == count_parameters(cfg)
    assert meta["tokens"] >= 20 * meta["params"] and meta["flops"] == 6 * meta["params"] * meta["tokens"]
    assert meta["final_loss"] < math.log(257) - 2.0  # far below a uniform guess
    assert curve["loss"].iloc[-1] < curve["loss"].iloc[0]
    _, curve2, _ = run()
    assert curve["loss"].tolist() == curve2["loss"].tolist()
    path = tmp_path / "m.pt"
    save_lm(model, meta, path)
    loaded, meta2 = load_lm(path)
    x = torch.from_numpy(wiki_stream[:32].astype(np.int64))[None]
    assert torch.equal(loaded(x), model.eval()(x)) and meta2 == meta


def test_a_config_size_gives_its_recipe_and_architecture():
    size = {"d_model": 16, "n_layers": 2, "n_heads": 4, "batch_size": 8, "lr": 0.003}
    recipe = Recipe.from_size(size, {"warmup_frac": 0.1, "weight_decay": 0.0})
    assert (recipe.batch_size, recipe.lr, recipe.warmup_frac, recipe.weight_decay) == (8, 0.003, 0.1, 0.0)
    assert GPTConfig.from_size(size, 257, 64) == GPTConfig(257, 64, 16, 2, 4)
    learned = GPTConfig.from_size({**size, "position": "learned"}, 257, 64)
    assert learned == GPTConfig(257, 64, 16, 2, 4, "learned")
    # the datamodel experiments' sizes build through the same builder, position included
    assert LMTask(257, 64).config({**size, "position": "learned"}) == learned


def test_divergence_stops_training_with_one_clear_error(wiki_stream):
    cfg = GPTConfig(257, 32, 16, 1, 4)
    with pytest.raises(
        TrainingError, match=r"^w/big step \d+: loss became (nan|inf) at learning rate [0-9.e+]+; lower"
    ):
        train_lm({"w": wiki_stream}, {"w": 1}, cfg, Recipe(8, 1.0e6), 20, 0, torch.device("cpu"), desc="w/big")


def test_repetition_counts_each_shards_share_of_the_tokens():
    streams = {"big": np.zeros(1000, np.uint16), "small": np.zeros(100, np.uint16)}
    info = repetition(streams, {"big": 1, "small": 1}, 2000)
    # each shard supplies 1,000 tokens: the big one once, the small one 10 times
    assert info == {"unique_tokens": 1100, "repetition": 2000 / 1100, "max_shard_repetition": 10.0,
                    "most_repeated_shard": "small"}  # fmt: skip


def test_a_run_that_would_repeat_a_shard_too_often_fails_before_training(wiki_stream):
    cfg = GPTConfig(257, 32, 16, 1, 4)
    small = {"abstracts": wiki_stream[:5000]}
    message = (
        r"^abstracts/ref: training on [\d,]+ tokens would repeat shard 'abstracts' \d+\.\d times "
        r"\(it holds 5,000 unique tokens\), more than model.max_repetition = 4"
    )
    with pytest.raises(ConfigError, match=message):
        train_lm(small, {"abstracts": 1}, cfg, Recipe(8, 0.01), 20, 0, torch.device("cpu"), "abstracts/ref", 4)
    _, _, meta = train_lm(small, {"abstracts": 1}, cfg, Recipe(8, 0.01), 2, 0, torch.device("cpu"), "ok", 4)
    assert meta["unique_tokens"] == 5000 and meta["repetition"] == meta["tokens"] / 5000 < 4


def test_our_adamw_takes_exactly_the_steps_of_torchs_fused_adamw():
    torch.manual_seed(0)
    ours = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.LayerNorm(4), torch.nn.Linear(4, 3))
    theirs = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.LayerNorm(4), torch.nn.Linear(4, 3))
    theirs.load_state_dict(ours.state_dict())
    recipe = Recipe(batch_size=8, lr=0.01, weight_decay=0.1)
    opt = make_optimizer(ours, recipe)
    groups = [{"params": [p for p in theirs.parameters() if p.dim() >= 2], "weight_decay": 0.1}]
    groups.append({"params": [p for p in theirs.parameters() if p.dim() < 2], "weight_decay": 0.0})
    reference = torch.optim.AdamW(groups, lr=0.01, betas=(recipe.beta1, recipe.beta2), fused=True)
    x = torch.randn(8, 5)
    for step in range(20):
        lr = lr_at(step, 20, recipe)
        ours(x).pow(2).sum().backward()
        update(ours, opt, lr, 1.0)
        theirs(x).pow(2).sum().backward()
        update(theirs, reference, lr, 1.0)
    for a, b in zip(ours.parameters(), theirs.parameters()):
        assert torch.equal(a, b)


def test_a_training_job_imports_neither_dynamo_nor_attribution_or_plotting_libraries():
    """What a train job's process loads: torch and the model, not TorchDynamo (1.5 s), traker or seaborn."""
    code = (
        "import sys, numpy as np, torch\n"
        "from proxyscale.models.gpt import GPTConfig\nfrom proxyscale.training.lm import train_lm\n"
        "from proxyscale.training.recipe import Recipe\n"
        "size = {'d_model': 8, 'n_layers': 1, 'n_heads': 2, 'batch_size': 4, 'lr': 0.01}\n"
        "cfg = GPTConfig.from_size(size, 257, 16)\n"
        "train_lm({'s': np.arange(5000) % 257}, {'s': 1.0}, cfg, Recipe.from_size(size, {}), 2.0, 0,"
        " torch.device('cpu'))\n"
        "print(sorted(m for m in ('torch._dynamo', 'trak', 'seaborn', 'matplotlib', 'scipy') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


CYCLE = 7  # a stream 0, 1, ..., 6, 0, 1, ...: the next token is (token + 1) mod 7, never the token itself


@pytest.fixture(scope="module")
def cycle_model():
    """A tiny GPT trained by train_lm on the cycle: it can only learn it from next-token targets."""
    stream = np.tile(np.arange(CYCLE, dtype=np.uint16), 3000)
    cfg = GPTConfig(CYCLE, 16, 16, 1, 4)
    model, _, meta = train_lm({"c": stream}, {"c": 1}, cfg, Recipe(8, 0.01), 20, 0, torch.device("cpu"))
    return model.eval(), meta


def test_train_lm_learns_the_next_token_not_the_current_one(cycle_model):
    model, meta = cycle_model
    x = torch.arange(16)[None] % CYCLE
    with torch.no_grad():
        predicted = model(x).argmax(-1)[0]
    assert predicted.tolist() == ((x[0] + 1) % CYCLE).tolist()  # a copy target would predict x itself
    assert meta["final_loss"] < 0.05


def test_every_language_model_loss_and_output_scores_the_next_token(cycle_model):
    """The LM paths of the datamodel, selection and correlation experiments, on the cycle model: the
    cycle's continuation costs almost nothing and is the greedy choice; a repeated token costs much."""
    import pandas as pd

    from proxyscale.correlation.evaluate import candidate_scores
    from proxyscale.datamodels.examples import Arrays
    from proxyscale.datamodels.tasks import LMTask, outputs, token_metrics

    model, _ = cycle_model
    task, cpu = LMTask(vocab_size=CYCLE, context_length=16), torch.device("cpu")
    tokens = np.arange(17)[None] % CYCLE
    mask = np.ones_like(tokens, dtype=bool)
    with torch.no_grad():
        loss_sum = task.loss_sum(model, task.to_batch(tokens, mask, cpu)).item()
    assert loss_sum / task.loss_terms(mask) < 0.05
    loss, hits = token_metrics(task, model, Arrays(tokens, mask), 1, cpu)
    assert loss[0] < 0.05 and hits[0] == 1.0
    assert outputs(task, model, Arrays(tokens, mask), 1, cpu)[0] > 3  # log(p / (1 - p)) of the next token
    frame = pd.DataFrame(
        {
            "example_id": [0, 0],
            "choice": [0, 1],
            "is_gold": [True, False],
            "kind": ["greedy", "greedy"],
            "context_ids": [np.arange(5), np.arange(5)],
            "continuation_ids": [np.array([5, 6]), np.array([4, 4])],
        }
    )
    scores = candidate_scores(model, frame, 2, cpu)
    assert scores["loss"].iloc[0] < 0.05 < 3 < scores["loss"].iloc[1]
    assert scores["greedy_correct"].tolist() == [True, False]
