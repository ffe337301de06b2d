"""Convert an OLMo ``hf_olmo`` checkpoint (the DataDecide suite's format) into a ``transformers``-native model.

Why: the DataDecide models (allenai/DataDecide-<corpus>-<size>) are published in the format of ai2-olmo's
own ``hf_olmo`` package: a config.json with model_type "hf_olmo" and OLMo's keys (d_model, n_heads, ...)
and weights named ``model.transformer.*`` with fused projections. ``transformers`` ships no class and
no converter for it (its OLMo converter reads OLMo's training checkpoints, config.yaml and model.pt),
and ai2-olmo itself pins numpy<2 and breaks on transformers 5. :func:`convert_hf_olmo` rewrites such
a checkpoint once, without importing ai2-olmo, into a directory that ``AutoModelForCausalLM`` and
``AutoTokenizer`` load natively, with the same logits:

* blocks with OLMo-1B's non-parametric LayerNorm (layer_norm_type "default" or "low_precision", no
  affine weights, eps 1e-5) become ``OlmoForCausalLM``, whose norms have no weights (and which clips
  q, k and v like OLMo's ``clip_qkv``);
* blocks with RMSNorm (layer_norm_type "rms"; DataDecide's ladder) become ``LlamaForCausalLM`` (unit
  weights where the norm has none; Llama has no ``clip_qkv``, so a checkpoint that clips is refused).

The layout follows ai2-olmo 0.6.0's ``olmo/model.py`` (``OLMoSequentialBlock``): the rows of ``att_proj``
are q, k and v (d_model, then n_kv_heads x head size twice); the rows of ``ff_proj`` are SwiGLU's
``x, gate = chunk(2)`` with output ``silu(gate) * x``, so the first half is Llama's ``up_proj`` and the
second its ``gate_proj``; RoPE rotates halves (``rotate_half``), as ``transformers`` does; the head is
``wte`` when ``weight_tying``, else ``transformer.ff_out``. The model keeps ``embedding_size`` (the padded
vocabulary) as its ``vocab_size``, so the logits have hf_olmo's width. Every other setting (ALiBi, biases,
qk-norm, OLMo's llama block, ...) is refused with one line naming the fields.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from proxyscale.errors import ConfigError, DataError
from proxyscale.io import atomic_dir
from proxyscale.models import built_parameters
from proxyscale.models.imported import transformers_package

# ai2-olmo 0.6.0's ModelConfig defaults of the keys read here: hf_olmo's OLMoConfig fills a key that
# config.json lacks with them (DataDecide's configs, from an older branch, have no rope_theta).
OLMO_DEFAULTS = {
    "d_model": 768,
    "n_heads": 12,
    "n_kv_heads": None,
    "multi_query_attention": None,
    "clip_qkv": None,
    "n_layers": 12,
    "mlp_ratio": 4,
    "mlp_hidden_size": None,
    "activation_type": "swiglu",
    "block_type": "sequential",
    "block_group_size": 1,
    "alibi": False,
    "rope": False,
    "rope_theta": 10_000,
    "attention_layer_norm": False,
    "embedding_layer_norm": False,
    "layer_norm_type": "default",
    "layer_norm_with_affine": True,
    "layer_norm_eps": 1e-05,
    "bias_for_layer_norm": None,
    "include_bias": True,
    "norm_after": False,
    "scale_logits": False,
    "max_sequence_length": 1024,
    "vocab_size": 50257,
    "embedding_size": 50304,
    "weight_tying": True,
    "eos_token_id": 50256,
    "pad_token_id": 50256,
}
# The settings both targets need, with the one value they support.
REQUIRED = {
    "block_type": "sequential",
    "block_group_size": 1,
    "alibi": False,
    "rope": True,
    "include_bias": False,
    "activation_type": "swiglu",
    "attention_layer_norm": False,
    "embedding_layer_norm": False,
    "norm_after": False,
    "scale_logits": False,
}
TARGETS = {"olmo": ("OlmoConfig", "OlmoForCausalLM"), "llama": ("LlamaConfig", "LlamaForCausalLM")}
OLMO_NORMS = ("default", "low_precision")  # F.layer_norm without weights; low_precision differs only under autocast
OLMO_NORM_EPS = 1e-05  # transformers' OlmoLayerNorm has this eps built in
WEIGHT_FILES = (  # the first found is read
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
)
HF_OLMO_TOKENIZER = "OLMoTokenizerFast"  # hf_olmo's class: a plain PreTrainedTokenizerFast that needs ai2-olmo


def convert_hf_olmo(source: Path, out: Path, where: str) -> dict:
    """Write the hf_olmo checkpoint in directory ``source`` to ``out`` as a ``transformers`` model (safetensors)
    with its tokenizer files, atomically; ``where`` (the config key) starts every error message.

    Returns ``{"family": "olmo" | "llama", "norm": layer_norm_type, "tied": bool, "params": int}``."""
    source, out = Path(source), Path(out)
    cfg = read_config(source, where)
    refuse_unsupported(cfg, source, where)
    family = "llama" if cfg["layer_norm_type"] == "rms" else "olmo"
    transformers, load_safetensors = _libraries(where)
    weights = load_weights(source, where, load_safetensors)
    check_weights(weights, cfg, source, where)
    config_class, model_class = TARGETS[family]
    model = getattr(transformers, model_class)(getattr(transformers, config_class)(**target_config(cfg, family)))
    model.load_state_dict(native_state_dict(weights, cfg, family), strict=True)
    model.to(weights["transformer.wte.weight"].dtype)
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp)
        copy_tokenizer(source, tmp)
    return {
        "family": family,
        "norm": cfg["layer_norm_type"],
        "tied": bool(cfg["weight_tying"]),
        "params": built_parameters(model),
    }


def _libraries(where: str):
    """``transformers`` and safetensors' loader, imported only here (the ``hf`` extra)."""
    transformers = transformers_package(f"{where}: converting an hf_olmo checkpoint needs")
    from safetensors.torch import load_file  # a dependency of transformers

    return transformers, load_file


def read_config(source: Path, where: str) -> dict:
    """The checkpoint's config.json with ai2-olmo's defaults for the keys it lacks."""
    path = source / "config.json"
    try:
        cfg = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{where}: cannot read '{path}' ({type(exc).__name__}: {exc})") from None
    if cfg.get("model_type") != "hf_olmo":
        raise ConfigError(
            f"{where}: '{source}' cannot be converted: model_type is {json.dumps(cfg.get('model_type'))}, "
            'not "hf_olmo" (OLMo\'s own format)'
        )
    return {**OLMO_DEFAULTS, **cfg}


def kv_heads(cfg: dict) -> int | None:
    """The number of key/value heads (OLMo's ``effective_n_kv_heads``), or None when the two keys conflict."""
    n_kv, mqa, n_heads = cfg["n_kv_heads"], cfg["multi_query_attention"], cfg["n_heads"]
    if n_kv is None:
        return 1 if mqa else n_heads
    if mqa is None or n_kv == (1 if mqa else n_heads):
        return n_kv
    return None


def mlp_hidden(cfg: dict) -> int:
    """The width of ``ff_proj`` (both SwiGLU halves)."""
    return cfg["mlp_hidden_size"] if cfg["mlp_hidden_size"] is not None else cfg["mlp_ratio"] * cfg["d_model"]


def _show(key: str, cfg: dict) -> str:
    return f"{key}={json.dumps(cfg[key])}"


def problems(cfg: dict) -> list[str]:
    """What in ``cfg`` neither target reproduces, one phrase per field (empty when it converts)."""
    found = [f"{_show(k, cfg)} (needs {json.dumps(v)})" for k, v in REQUIRED.items() if cfg[k] != v]
    if cfg["layer_norm_with_affine"] and cfg["bias_for_layer_norm"]:
        found.append(f"{_show('bias_for_layer_norm', cfg)} (norms without biases only)")
    kv = kv_heads(cfg)
    if kv is None:
        found.append(f"{_show('n_kv_heads', cfg)} with {_show('multi_query_attention', cfg)} (they conflict)")
    if cfg["d_model"] % cfg["n_heads"] or (kv and cfg["n_heads"] % kv):
        found.append(f"{_show('d_model', cfg)}, {_show('n_heads', cfg)}, n_kv_heads={kv} (heads must divide evenly)")
    if mlp_hidden(cfg) % 2:
        found.append(f"{_show('mlp_hidden_size', cfg)}, {_show('mlp_ratio', cfg)} (SwiGLU needs an even hidden size)")
    if (cfg["embedding_size"] or cfg["vocab_size"]) < cfg["vocab_size"]:
        found.append(f"{_show('embedding_size', cfg)} below {_show('vocab_size', cfg)}")
    return found + norm_problems(cfg)


def norm_problems(cfg: dict) -> list[str]:
    """What of the norm settings the target they choose (Olmo or Llama) cannot reproduce."""
    norm = _show("layer_norm_type", cfg)
    if cfg["layer_norm_type"] == "rms":
        return [f"{_show('clip_qkv', cfg)} with {norm} (Llama does not clip q, k, v)"] if cfg["clip_qkv"] else []
    if cfg["layer_norm_type"] not in OLMO_NORMS:
        return [f'{norm} (needs "default", "low_precision" or "rms")']
    found = []
    if cfg["layer_norm_with_affine"]:
        found.append(f"{_show('layer_norm_with_affine', cfg)} with {norm} (Olmo's LayerNorm has no weights)")
    if cfg["layer_norm_eps"] != OLMO_NORM_EPS:
        found.append(f"{_show('layer_norm_eps', cfg)} with {norm} (Olmo's LayerNorm uses {OLMO_NORM_EPS})")
    return found


def refuse_unsupported(cfg: dict, source: Path, where: str) -> None:
    """One ConfigError line naming every unsupported field of ``cfg``."""
    if found := problems(cfg):
        raise ConfigError(f"{where}: hf_olmo checkpoint '{source}' cannot be converted: {'; '.join(found)}")


def target_config(cfg: dict, family: str) -> dict:
    """Keyword arguments of ``OlmoConfig`` or ``LlamaConfig`` for ``cfg``."""
    common = {
        "vocab_size": cfg["embedding_size"] or cfg["vocab_size"],
        "hidden_size": cfg["d_model"],
        "intermediate_size": mlp_hidden(cfg) // 2,
        "num_hidden_layers": cfg["n_layers"],
        "num_attention_heads": cfg["n_heads"],
        "num_key_value_heads": kv_heads(cfg),
        "hidden_act": "silu",
        "max_position_embeddings": cfg["max_sequence_length"],
        "rope_theta": float(cfg["rope_theta"]),
        "attention_bias": False,
        "tie_word_embeddings": bool(cfg["weight_tying"]),
        "bos_token_id": None,
        "eos_token_id": cfg["eos_token_id"],
        "pad_token_id": cfg["pad_token_id"],
    }
    if family == "olmo":
        return {**common, "clip_qkv": cfg["clip_qkv"]}
    return {**common, "rms_norm_eps": cfg["layer_norm_eps"], "mlp_bias": False}


def load_weights(source: Path, where: str, load_safetensors) -> dict[str, torch.Tensor]:
    """The checkpoint's tensors (one file or the shards of an index), with hf_olmo's ``model.`` prefix removed."""
    path = next((source / name for name in WEIGHT_FILES if (source / name).is_file()), None)
    if path is None:
        raise DataError(f"{where}: '{source}' has none of {', '.join(WEIGHT_FILES)}")
    files = [path]
    if path.name.endswith(".index.json"):
        files = [source / name for name in sorted(set(json.loads(path.read_text())["weight_map"].values()))]
    tensors = {}
    for file in files:
        if file.suffix == ".safetensors":
            tensors.update(load_safetensors(str(file)))
        else:
            tensors.update(torch.load(file, map_location="cpu", weights_only=True))
    return {name.removeprefix("model."): tensor for name, tensor in tensors.items()}


def expected_shapes(cfg: dict) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor an hf_olmo model of ``cfg`` has (prefix ``model.`` removed)."""
    d, n_embeddings, hidden = cfg["d_model"], cfg["embedding_size"] or cfg["vocab_size"], mlp_hidden(cfg)
    kv_width = kv_heads(cfg) * (d // cfg["n_heads"])
    affine = cfg["layer_norm_with_affine"]
    shapes = {"transformer.wte.weight": (n_embeddings, d)} | ({"transformer.ln_f.weight": (d,)} if affine else {})
    if not cfg["weight_tying"]:
        shapes["transformer.ff_out.weight"] = (n_embeddings, d)
    for i in range(cfg["n_layers"]):
        block = f"transformer.blocks.{i}."
        shapes |= {
            block + "att_proj.weight": (d + 2 * kv_width, d),
            block + "attn_out.weight": (d, d),
            block + "ff_proj.weight": (hidden, d),
            block + "ff_out.weight": (d, hidden // 2),
        }
        if affine:
            shapes |= {block + "attn_norm.weight": (d,), block + "ff_norm.weight": (d,)}
    return shapes


def _few(names) -> str:
    names = sorted(names)
    return ", ".join("model." + n for n in names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def check_weights(weights: dict, cfg: dict, source: Path, where: str) -> None:
    """A DataError line unless ``weights`` are exactly the tensors, of the shapes, that config.json describes."""
    shapes = expected_shapes(cfg)
    found = []
    if missing := shapes.keys() - weights.keys():
        found.append(f"missing {_few(missing)}")
    if unexpected := weights.keys() - shapes.keys():
        found.append(f"unexpected {_few(unexpected)}")
    found += [
        f"model.{name} is {tuple(weights[name].shape)}, not {shape}"
        for name, shape in sorted(shapes.items())
        if name in weights and tuple(weights[name].shape) != shape
    ]
    if found:
        raise DataError(f"{where}: the weights in '{source}' do not match its config.json: {'; '.join(found)}")


def native_state_dict(weights: dict, cfg: dict, family: str) -> dict[str, torch.Tensor]:
    """The hf_olmo tensors renamed and split into the target's state dict (``lm_head`` included when tied)."""
    d, half = cfg["d_model"], mlp_hidden(cfg) // 2
    kv_width = kv_heads(cfg) * (d // cfg["n_heads"])
    wte = weights["transformer.wte.weight"]
    unit = torch.ones(d, dtype=wte.dtype)  # an RMSNorm without weights
    state = {
        "model.embed_tokens.weight": wte,
        "lm_head.weight": wte if cfg["weight_tying"] else weights["transformer.ff_out.weight"],
    }
    for i in range(cfg["n_layers"]):
        block, layer = f"transformer.blocks.{i}.", f"model.layers.{i}."
        q, k, v = weights[block + "att_proj.weight"].split([d, kv_width, kv_width])
        up, gate = weights[block + "ff_proj.weight"].split([half, half])  # OLMo: x, gate = chunk(2); silu(gate) * x
        state |= {
            layer + "self_attn.q_proj.weight": q,
            layer + "self_attn.k_proj.weight": k,
            layer + "self_attn.v_proj.weight": v,
            layer + "self_attn.o_proj.weight": weights[block + "attn_out.weight"],
            layer + "mlp.gate_proj.weight": gate,
            layer + "mlp.up_proj.weight": up,
            layer + "mlp.down_proj.weight": weights[block + "ff_out.weight"],
        }
        if family == "llama":
            state[layer + "input_layernorm.weight"] = weights.get(block + "attn_norm.weight", unit)
            state[layer + "post_attention_layernorm.weight"] = weights.get(block + "ff_norm.weight", unit)
    if family == "llama":
        state["model.norm.weight"] = weights.get("transformer.ln_f.weight", unit)
    return state


def copy_tokenizer(source: Path, out: Path) -> None:
    """Copy the tokenizer files ``source`` has; hf_olmo's tokenizer class becomes the plain fast tokenizer it
    subclasses, so ``AutoTokenizer`` loads it without ai2-olmo."""
    for name in TOKENIZER_FILES:
        if (source / name).is_file():
            shutil.copyfile(source / name, out / name)
    path = out / "tokenizer_config.json"
    if path.is_file():
        settings = json.loads(path.read_text())
        if settings.get("tokenizer_class") == HF_OLMO_TOKENIZER:
            settings["tokenizer_class"] = "PreTrainedTokenizerFast"
            settings.pop("auto_map", None)
            path.write_text(json.dumps(settings, indent=2) + "\n")
