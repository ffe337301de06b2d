"""OLMo's ``hf_olmo`` checkpoints (the DataDecide suite's format) converted into ``transformers`` models.

Tiny random checkpoints are written on disk as hf_olmo saves them (config.json with OLMo's keys, weights
named ``model.transformer.*`` with fused projections, a byte-level BPE tokenizer under hf_olmo's tokenizer
class) for each kind of block: non-parametric LayerNorm (to ``OlmoForCausalLM``) and RMSNorm (to
``LlamaForCausalLM``), tied and untied, with grouped and multi-query attention, qkv clipping and a padded
embedding. Loaded back with ``AutoModelForCausalLM``, each gives the logits of a forward pass written here
from OLMo's architecture with plain tensor operations. Configurations that neither target reproduces
are refused in one line naming the fields (these need no ``transformers``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from conftest import needs_transformers
from proxyscale.data.tokenizer import EOS_TOKEN, train_bpe
from proxyscale.errors import ConfigError, DataError
from proxyscale.models.olmo_convert import convert_hf_olmo

WHERE = "models.s.checkpoints.d"
TEXT = [
    "The quick brown fox jumps over the lazy dog. " * 3,
    "Question: Who wrote Hamlet?\nAnswer: William Shakespeare",
]
VOCAB, EMBEDDINGS = 300, 320  # hf_olmo pads the embedding (and the logits) past the tokenizer's vocabulary
BASE = {
    "model_type": "hf_olmo",
    "d_model": 16,
    "n_heads": 2,
    "n_kv_heads": None,
    "multi_query_attention": None,
    "n_layers": 2,
    "mlp_ratio": 4,
    "mlp_hidden_size": None,
    "activation_type": "swiglu",
    "block_type": "sequential",
    "block_group_size": 1,
    "alibi": False,
    "rope": True,
    "rope_theta": 10000,
    "clip_qkv": None,
    "include_bias": False,
    "bias_for_layer_norm": None,
    "attention_layer_norm": False,
    "embedding_layer_norm": False,
    "norm_after": False,
    "scale_logits": False,
    "layer_norm_type": "default",
    "layer_norm_with_affine": False,
    "layer_norm_eps": 1e-05,
    "weight_tying": True,
    "max_sequence_length": 32,
    "vocab_size": VOCAB,
    "embedding_size": EMBEDDINGS,
    "eos_token_id": 0,
    "pad_token_id": 0,
}
RMS = {"layer_norm_type": "rms", "layer_norm_with_affine": True, "layer_norm_eps": 1e-06}
CASES = {  # name -> (config overrides, target family)
    "layernorm-tied": ({}, "olmo"),
    "layernorm-untied": (
        {"layer_norm_type": "low_precision", "weight_tying": False, "n_heads": 4, "n_kv_heads": 2, "clip_qkv": 0.5,
         "rope_theta": 500000},
        "olmo",
    ),
    "rms-tied": ({**RMS, "layer_norm_eps": 1e-05, "n_heads": 4, "mlp_hidden_size": 40}, "llama"),
    "rms-untied": ({**RMS, "weight_tying": False, "multi_query_attention": True}, "llama"),  # DataDecide's kind
    "rms-without-weights": ({**RMS, "layer_norm_with_affine": False, "weight_tying": False}, "llama"),
}  # fmt: skip


# Checkpoints written the way hf_olmo saves them


def olmo_config(**overrides) -> dict:
    return {**BASE, **overrides}


def kv_heads(cfg: dict) -> int:
    return cfg["n_kv_heads"] or (1 if cfg["multi_query_attention"] else cfg["n_heads"])


def random_weights(cfg: dict, seed: int = 0) -> dict[str, torch.Tensor]:
    """An hf_olmo state dict of ``cfg`` with random values (norm weights near 1)."""
    gen = torch.Generator().manual_seed(seed)
    d, hidden = cfg["d_model"], cfg["mlp_hidden_size"] or cfg["mlp_ratio"] * cfg["d_model"]
    kv_width = kv_heads(cfg) * d // cfg["n_heads"]

    def rand(*shape):
        return 0.3 * torch.randn(*shape, generator=gen)

    def norm():
        return 1 + rand(d)

    affine = cfg["layer_norm_with_affine"]
    w = {"wte.weight": rand(EMBEDDINGS, d)} | ({"ln_f.weight": norm()} if affine else {})
    if not cfg["weight_tying"]:
        w["ff_out.weight"] = rand(EMBEDDINGS, d)
    for i in range(cfg["n_layers"]):
        b = f"blocks.{i}."
        w |= {b + "att_proj.weight": rand(d + 2 * kv_width, d), b + "attn_out.weight": rand(d, d),
              b + "ff_proj.weight": rand(hidden, d), b + "ff_out.weight": rand(d, hidden // 2)}  # fmt: skip
        if affine:
            w |= {b + "attn_norm.weight": norm(), b + "ff_norm.weight": norm()}
    return {"model.transformer." + k: v for k, v in w.items()}


def save_weights(weights: dict, directory: Path, storage: str) -> None:
    """One safetensors file, two shards with an index, or a pytorch_model.bin, as ``save_pretrained`` writes them."""
    from safetensors.torch import save_file

    if storage == "safetensors":
        save_file(weights, directory / "model.safetensors")
    elif storage == "sharded":
        names = sorted(weights)
        shards = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
        for file, part in shards.items():
            save_file({n: weights[n] for n in part}, directory / file)
        index = {"metadata": {}, "weight_map": {n: file for file, part in shards.items() for n in part}}
        (directory / "model.safetensors.index.json").write_text(json.dumps(index))
    else:
        torch.save(weights, directory / "pytorch_model.bin")


def save_tokenizer(directory: Path) -> None:
    """A byte-level BPE's tokenizer.json under hf_olmo's tokenizer class, as its converter saves it."""
    train_bpe(TEXT, VOCAB).save(str(directory / "tokenizer.json"))
    settings = {"tokenizer_class": "OLMoTokenizerFast", "eos_token": EOS_TOKEN, "model_max_length": 32}
    (directory / "tokenizer_config.json").write_text(json.dumps(settings))
    (directory / "special_tokens_map.json").write_text(json.dumps({"eos_token": EOS_TOKEN}))


def checkpoint(directory: Path, cfg: dict, storage: str = "safetensors") -> dict[str, torch.Tensor]:
    """Write an hf_olmo checkpoint of ``cfg`` in ``directory``; returns its weights."""
    weights = random_weights(cfg)
    directory.mkdir(parents=True)
    (directory / "config.json").write_text(json.dumps(cfg))
    save_weights(weights, directory, storage)
    save_tokenizer(directory)
    return weights


# OLMo's forward pass, written from its architecture (ai2-olmo 0.6.0's OLMoSequentialBlock)


def olmo_norm(x: torch.Tensor, weight: torch.Tensor | None, cfg: dict) -> torch.Tensor:
    eps = cfg["layer_norm_eps"]
    if cfg["layer_norm_type"] == "rms":
        x = x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    else:
        centred = x - x.mean(-1, keepdim=True)
        x = centred / torch.sqrt(centred.pow(2).mean(-1, keepdim=True) + eps)
    return x if weight is None else x * weight


def olmo_rotary(x: torch.Tensor, theta: float) -> torch.Tensor:
    """OLMo's RoPE on (heads, positions, head size): angles repeated over both halves, ``rotate_half`` = (-x2, x1)."""
    size = x.shape[-1]
    inv_freq = 1.0 / theta ** (torch.arange(0, size, 2, dtype=torch.float) / size)
    angles = torch.arange(x.shape[-2], dtype=torch.float)[:, None] * inv_freq[None, :]
    angles = torch.cat([angles, angles], dim=-1)
    x1, x2 = x[..., : size // 2], x[..., size // 2 :]
    return x * angles.cos() + torch.cat([-x2, x1], dim=-1) * angles.sin()


def olmo_logits(weights: dict, cfg: dict, ids: list[int]) -> torch.Tensor:
    """Logits (positions x embedding rows) of the hf_olmo model ``weights`` of ``cfg`` on ``ids``."""
    w = {k.removeprefix("model.transformer."): v for k, v in weights.items()}
    d, heads, kv = cfg["d_model"], cfg["n_heads"], kv_heads(cfg)
    size, n = d // heads, len(ids)
    causal = torch.full((n, n), -math.inf).triu(1)
    x = w["wte.weight"][ids]
    for i in range(cfg["n_layers"]):
        b = f"blocks.{i}."
        qkv = olmo_norm(x, w.get(b + "attn_norm.weight"), cfg) @ w[b + "att_proj.weight"].T
        if cfg["clip_qkv"] is not None:
            qkv = qkv.clamp(-cfg["clip_qkv"], cfg["clip_qkv"])
        q = qkv[:, :d].reshape(n, heads, size).transpose(0, 1)
        k = qkv[:, d : d + kv * size].reshape(n, kv, size).transpose(0, 1)
        v = qkv[:, d + kv * size :].reshape(n, kv, size).transpose(0, 1)
        q, k = olmo_rotary(q, cfg["rope_theta"]), olmo_rotary(k, cfg["rope_theta"])
        k, v = k.repeat_interleave(heads // kv, dim=0), v.repeat_interleave(heads // kv, dim=0)
        attention = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(size) + causal, dim=-1) @ v
        x = x + attention.transpose(0, 1).reshape(n, d) @ w[b + "attn_out.weight"].T
        h, gate = (olmo_norm(x, w.get(b + "ff_norm.weight"), cfg) @ w[b + "ff_proj.weight"].T).chunk(2, dim=-1)
        x = x + (gate * torch.sigmoid(gate) * h) @ w[b + "ff_out.weight"].T  # SwiGLU: silu(gate) * x
    head = w["wte.weight"] if cfg["weight_tying"] else w["ff_out.weight"]
    return olmo_norm(x, w.get("ln_f.weight"), cfg) @ head.T


def converted_logits(out: Path, ids: list[int]) -> torch.Tensor:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0]


IDS = torch.randint(0, VOCAB, (12,), generator=torch.Generator().manual_seed(1)).tolist()


# Conversion


@pytest.mark.parametrize("name", CASES)
def test_converted_models_give_olmos_logits(tmp_path, name):
    needs_transformers()
    from transformers import AutoConfig

    overrides, family = CASES[name]
    cfg = olmo_config(**overrides)
    weights = checkpoint(tmp_path / "src", cfg)
    record = convert_hf_olmo(tmp_path / "src", tmp_path / "out", WHERE)
    unit_norms = 0 if cfg["layer_norm_with_affine"] or family == "olmo" else (2 * cfg["n_layers"] + 1) * cfg["d_model"]
    assert record == {
        "family": family,
        "norm": cfg["layer_norm_type"],
        "tied": cfg["weight_tying"],
        "params": sum(t.numel() for t in weights.values()) + unit_norms,
    }
    assert AutoConfig.from_pretrained(tmp_path / "out").model_type == family
    logits = converted_logits(tmp_path / "out", IDS)
    assert logits.shape == (len(IDS), EMBEDDINGS)
    assert (logits - olmo_logits(weights, cfg, IDS)).abs().max() < 1e-5


@pytest.mark.parametrize("storage", ["sharded", "bin"])
def test_sharded_and_pickled_weights_convert_over_an_old_result(tmp_path, storage):
    needs_transformers()
    cfg = olmo_config(**CASES["rms-untied"][0])
    weights = checkpoint(tmp_path / "src", cfg, storage)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "stale.txt").write_text("from an earlier conversion")
    convert_hf_olmo(tmp_path / "src", tmp_path / "out", WHERE)
    assert not (tmp_path / "out" / "stale.txt").exists()
    assert (converted_logits(tmp_path / "out", IDS) - olmo_logits(weights, cfg, IDS)).abs().max() < 1e-5


def test_the_tokenizer_loads_without_ai2_olmo(tmp_path):
    needs_transformers()
    from transformers import AutoTokenizer

    checkpoint(tmp_path / "src", olmo_config())
    convert_hf_olmo(tmp_path / "src", tmp_path / "out", WHERE)
    tok = AutoTokenizer.from_pretrained(tmp_path / "out")
    assert tok.encode(TEXT[1]) == train_bpe(TEXT, VOCAB).encode(TEXT[1]).ids
    assert tok.eos_token == EOS_TOKEN and tok.model_max_length == 32
    assert json.loads((tmp_path / "out" / "special_tokens_map.json").read_text()) == {"eos_token": EOS_TOKEN}
    # transformers 4 cannot resolve hf_olmo's class name without ai2-olmo; 5 falls back to tokenizer.json
    settings = json.loads((tmp_path / "out" / "tokenizer_config.json").read_text())
    assert settings == {"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": EOS_TOKEN, "model_max_length": 32}


# Refusals


@pytest.mark.parametrize(
    ("overrides", "fields"),
    [
        ({"alibi": True, "rope": False}, ["alibi=true", "rope=false"]),
        ({"include_bias": True}, ["include_bias=true"]),
        ({"block_type": "llama"}, ['block_type="llama"']),
        ({"block_group_size": 2}, ["block_group_size=2"]),
        ({"activation_type": "gelu"}, ['activation_type="gelu"']),
        ({"attention_layer_norm": True}, ["attention_layer_norm=true"]),
        ({"embedding_layer_norm": True, "norm_after": True}, ["embedding_layer_norm=true", "norm_after=true"]),
        ({"scale_logits": True}, ["scale_logits=true"]),
        ({"layer_norm_with_affine": True}, ["layer_norm_with_affine=true"]),
        ({"layer_norm_eps": 1e-06}, ["layer_norm_eps=1e-06"]),
        ({"layer_norm_type": "amd_compatible"}, ['layer_norm_type="amd_compatible"']),
        ({**RMS, "clip_qkv": 8.0}, ["clip_qkv=8.0"]),
        ({**RMS, "bias_for_layer_norm": True}, ["bias_for_layer_norm=true"]),
        ({"n_kv_heads": 2, "multi_query_attention": True}, ["n_kv_heads=2", "multi_query_attention=true"]),
        ({"n_heads": 3}, ["n_heads=3"]),
        ({"mlp_hidden_size": 33}, ["mlp_hidden_size=33"]),
        ({"embedding_size": 256}, ["embedding_size=256"]),
    ],
)
def test_unsupported_configurations_are_refused_in_one_line(tmp_path, overrides, fields):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "config.json").write_text(json.dumps(olmo_config(**overrides)))
    with pytest.raises(ConfigError) as refused:
        convert_hf_olmo(tmp_path / "src", tmp_path / "out", WHERE)
    message = str(refused.value)
    assert "\n" not in message and message.startswith(f"{WHERE}: hf_olmo checkpoint '{tmp_path / 'src'}' cannot")
    assert all(field in message for field in fields), message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_missing_keys_take_olmos_defaults(tmp_path):
    """A config.json without ``rope`` or ``include_bias`` means OLMo's defaults: learned positions, biases."""
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "hf_olmo"}))
    with pytest.raises(ConfigError, match=r"rope=false .*include_bias=true"):
        convert_hf_olmo(tmp_path, tmp_path / "out", WHERE)


def test_other_formats_and_broken_checkpoints_are_refused(tmp_path):
    needs_transformers()
    (tmp_path / "llama").mkdir()
    (tmp_path / "llama" / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(ConfigError, match=f'^{WHERE}: .* model_type is "llama", not "hf_olmo"'):
        convert_hf_olmo(tmp_path / "llama", tmp_path / "out", WHERE)
    with pytest.raises(DataError, match=f"^{WHERE}: cannot read .*config.json"):
        convert_hf_olmo(tmp_path / "missing", tmp_path / "out", WHERE)

    cfg = olmo_config()
    checkpoint(tmp_path / "untied", {**cfg, "weight_tying": False})
    (tmp_path / "untied" / "config.json").write_text(json.dumps(cfg))  # says tied: ff_out is one weight too many
    with pytest.raises(DataError, match=r"unexpected model\.transformer\.ff_out\.weight"):
        convert_hf_olmo(tmp_path / "untied", tmp_path / "out", WHERE)
    (tmp_path / "untied" / "model.safetensors").unlink()
    with pytest.raises(DataError, match="has none of model.safetensors"):
        convert_hf_olmo(tmp_path / "untied", tmp_path / "out", WHERE)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))


# In the workflow: format: hf_olmo entries are converted by convert_imported, then evaluated


@pytest.mark.workflow
def test_hf_olmo_checkpoints_run_through_the_correlation_report_with_no_ai2_olmo(tmp_path):
    """Two imported sizes in hf_olmo format (a LayerNorm proxy, an untied RMSNorm reference as DataDecide's),
    one checkpoint per distribution: each is converted once, evaluated with transformers alone, and the
    record names the native architecture; a second run plans nothing."""
    import os

    import pandas as pd

    from conftest import job_counts, run_snakemake, tiny_config, write_config

    needs_transformers()
    config = tiny_config()
    for key in ("attribution", "selection", "sizes"):
        config.pop(key)
    config["test_sets"] = {t: config["test_sets"][t] for t in ("c4", "lambada")}
    config["distributions"].pop("wiki")  # three are enough for the report
    kinds = {"olmo_ln": olmo_config(), "olmo_rms": olmo_config(**RMS, weight_tying=False, d_model=32)}
    config["models"] = {size: {"tokens": 10_000, "format": "hf_olmo", "checkpoints": {}} for size in kinds}
    for seed, dist in enumerate(config["distributions"]):
        for size, cfg in kinds.items():
            directory = tmp_path / "ckpt" / size / dist
            directory.mkdir(parents=True)
            (directory / "config.json").write_text(json.dumps(cfg))
            save_weights(random_weights(cfg, seed), directory, "safetensors")
            save_tokenizer(directory)
            config["models"][size]["checkpoints"][dist] = {"path": str(directory)}
    config["reference"] = "olmo_rms"
    work = tmp_path / "work"
    work.mkdir()
    write_config(config, work)
    offline = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "no_cache")}
    plan = run_snakemake(work, "-n", "correlation_report", "--quiet", "rules", env=offline)
    assert plan.returncode == 0, plan.stderr[-3000:]
    counts = job_counts(plan.stdout)
    assert counts["convert_imported"] == counts["evaluate_imported"] == 6
    done = run_snakemake(work, "--cores", "2", "correlation_report", env=offline)
    assert done.returncode == 0, done.stderr[-3000:]
    results = work / "results"
    converted = json.loads((results / "imported/converted/web/olmo_rms/config.json").read_text())
    assert converted["model_type"] == "llama" and not converted["tie_word_embeddings"]
    assert json.loads((results / "imported/converted/web/olmo_ln/config.json").read_text())["model_type"] == "olmo"
    record = json.loads((results / "imported/web/olmo_ln.json").read_text())
    assert record["architecture"] == "olmo" and record["source"] == "results/imported/converted/web/olmo_ln"
    compute = pd.read_parquet(results / "correlation/compute.parquet").set_index("size")
    assert compute.loc["olmo_ln", "params"] < compute.loc["olmo_rms", "params"]
    report = (results / "correlation/report.md").read_text()
    assert "Every size is imported (" in report and "trained elsewhere on data unknown (imported)" in report
    again = run_snakemake(work, "-n", "correlation_report", env=offline)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
