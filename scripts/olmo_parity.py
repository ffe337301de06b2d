"""Check :func:`proxyscale.models.olmo_convert.convert_hf_olmo` against ai2-olmo's own ``hf_olmo`` classes.

For each kind of block the converter accepts (non-parametric LayerNorm to transformers' Olmo, RMSNorm to
its Llama; tied and untied heads; grouped and multi-query attention, qkv clipping, a padded embedding),
a tiny random ``hf_olmo.OLMoForCausalLM`` is saved with ``save_pretrained`` (with a byte-level BPE under
hf_olmo's ``OLMoTokenizerFast``), converted, and loaded back with ``AutoModelForCausalLM`` and
``AutoTokenizer``. It prints, per model, the largest absolute difference between the two models' logits
on random token ids (float32, CPU) and whether the converted tokenizer, a plain fast tokenizer, encodes
like hf_olmo's; it exits 1 when a difference exceeds 1e-5 or a tokenizer differs.

ai2-olmo pins numpy<2 and needs transformers 4, so it runs in its own environment (the ``datadecide``
extra), never the workflow's:

    python3 -m venv /tmp/olmo-venv
    /tmp/olmo-venv/bin/pip install torch==2.13.0        # the CPU wheel
    /tmp/olmo-venv/bin/pip install -e ".[datadecide,test]"
    /tmp/olmo-venv/bin/python scripts/olmo_parity.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch
from hf_olmo import OLMoConfig, OLMoForCausalLM, OLMoTokenizerFast
from transformers import AutoModelForCausalLM, AutoTokenizer

from proxyscale.data.tokenizer import EOS_TOKEN, train_bpe
from proxyscale.models.olmo_convert import convert_hf_olmo

TOLERANCE = 1e-5
TEXT = ["The quick brown fox jumps over the lazy dog. " * 3, "Question: Who wrote Hamlet?\nAnswer: Shakespeare"]
BASE = {  # OLMo-1B's block at toy size: hf_olmo's OLMoConfig takes ai2-olmo's ModelConfig keys
    "d_model": 32,
    "n_heads": 4,
    "n_layers": 2,
    "mlp_ratio": 4,
    "activation_type": "swiglu",
    "block_type": "sequential",
    "rope": True,
    "alibi": False,
    "include_bias": False,
    "layer_norm_type": "default",
    "layer_norm_with_affine": False,
    "layer_norm_eps": 1e-05,
    "weight_tying": True,
    "max_sequence_length": 64,
    "vocab_size": 300,
    "embedding_size": 384,
    "eos_token_id": 0,
    "pad_token_id": 0,
}
RMS = {"layer_norm_type": "rms", "layer_norm_with_affine": True, "layer_norm_eps": 1e-06}
MODELS = {
    "layernorm-tied": {},
    "layernorm-untied": {"layer_norm_type": "low_precision", "weight_tying": False, "n_kv_heads": 2, "clip_qkv": 0.5,
                         "rope_theta": 500000},
    "rms-tied": {**RMS, "layer_norm_eps": 1e-05, "mlp_hidden_size": 72},
    "rms-untied": {**RMS, "weight_tying": False},  # DataDecide's kind
    "rms-untied-mqa": {**RMS, "weight_tying": False, "multi_query_attention": True},
}  # fmt: skip


def olmo_model(settings: dict, seed: int) -> OLMoForCausalLM:
    """An hf_olmo model of ``settings`` with random weights (norm weights near 1)."""
    torch.manual_seed(seed)
    model = OLMoForCausalLM(OLMoConfig(**{**BASE, **settings}), init_params=True)
    with torch.no_grad():
        for parameter in model.parameters():
            noise = 0.2 * torch.randn_like(parameter)
            parameter.copy_(1 + noise if parameter.dim() == 1 else noise)
    return model.eval()


def check(name: str, settings: dict, seed: int, root: Path) -> bool:
    """Save, convert and compare one model; prints its line and returns whether it agrees."""
    source, out = root / name, root / f"{name}-converted"
    original = olmo_model(settings, seed)
    original.save_pretrained(source)
    OLMoTokenizerFast(tokenizer_object=train_bpe(TEXT, BASE["vocab_size"]), eos_token=EOS_TOKEN).save_pretrained(source)
    record = convert_hf_olmo(source, out, f"parity.{name}")
    converted = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    ids = torch.randint(0, BASE["embedding_size"], (2, 48), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        diff = (original(input_ids=ids).logits - converted(input_ids=ids).logits).abs().max().item()
    tokenizer = AutoTokenizer.from_pretrained(out)  # hf_olmo registered its class: the converted one must not need it
    same_tokens = not isinstance(tokenizer, OLMoTokenizerFast) and all(
        tokenizer.encode(text) == OLMoTokenizerFast.from_pretrained(source).encode(text) for text in TEXT
    )
    ok = diff <= TOLERANCE and same_tokens
    print(
        f"{name:16} -> {type(converted).__name__:16} params {record['params']:>7,}  max |logit diff| {diff:.2e}  "
        f"{type(tokenizer).__name__} {'same' if same_tokens else 'DIFFERENT'}  {'ok' if ok else 'FAIL'}"
    )
    return ok


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        results = [check(name, settings, seed, Path(tmp)) for seed, (name, settings) in enumerate(MODELS.items())]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
