"""The workflow's GPT as a Hugging Face ``transformers`` model, so that a proxy trained here can leave it:
lm-evaluation-harness, vLLM or a colleague's notebook load the exported directory with
``AutoModelForCausalLM`` and ``AutoTokenizer``, and this workflow reads it back through ``models:``.

Only exact mappings are written, each weight copied, nothing approximated:

- ALiBi without biases (a size's ``bias: false``) is MPT (``MptForCausalLM``): the same pre-LayerNorm
  blocks, fused qkv, 4x exact-GELU MLP, tied head and ALiBi slopes. transformers' MPT adds the bias
  relative to the last key rather than to the query, a constant per query row that softmax removes.
- Learned positions, with or without biases, are GPT-2 (``GPT2LMHeadModel`` with exact GELU), whose
  ``Conv1D`` layers hold the transposed weights.
- ALiBi with biases (the GPT's default) has no family in transformers that holds it exactly (MPT has no
  biases; Falcon and BLOOM scale or normalise differently), and is refused in one line.

The tokenizer is the workflow's own as a ``PreTrainedTokenizerFast``: the trained BPE or a `tokenizers`
file as it is, and the byte kind as a byte-level BPE with no merges, which gives every UTF-8 byte its
own id, as :class:`proxyscale.data.tokenizer.ByteTokenizer` does. Its end-of-sequence token is the
start token of an empty context, here and in the exported model.
"""

from __future__ import annotations

from pathlib import Path

import torch

from proxyscale.data.tokenizer import EOS_TOKEN, make_tokenizer
from proxyscale.errors import ConfigError
from proxyscale.io import atomic_dir, save_json
from proxyscale.models.gpt import GPT
from proxyscale.models.imported import transformers_package


def family(model: GPT, where: str) -> str:
    """The transformers family that holds ``model`` exactly: ``mpt`` or ``gpt2`` (module docstring)."""
    cfg = model.cfg
    if cfg.position == "learned":
        return "gpt2"
    if not cfg.bias:
        return "mpt"
    raise ConfigError(
        f"{where}: a GPT with ALiBi and biases has no exact transformers family (MPT has no biases); train the "
        "size with bias: false (exported as MPT) or position: learned (exported as GPT-2)"
    )


def _mpt(transformers, model: GPT, eos_id: int):
    cfg = model.cfg
    config = transformers.MptConfig(
        d_model=cfg.d_model, n_heads=cfg.n_heads, n_layers=cfg.n_layers, expansion_ratio=4,
        max_seq_len=cfg.context_length, vocab_size=cfg.vocab_size, no_bias=True, layer_norm_epsilon=1e-5,
        attn_config={"alibi": True, "alibi_bias_max": 8}, tie_word_embeddings=True, eos_token_id=eos_id,
        bos_token_id=eos_id,
    )  # fmt: skip
    state = {"transformer.wte.weight": model.tok.weight, "transformer.norm_f.weight": model.ln_f.weight}
    for i, b in enumerate(model.blocks):
        p = f"transformer.blocks.{i}."
        state |= {
            p + "norm_1.weight": b.ln1.weight,
            p + "attn.Wqkv.weight": b.qkv.weight,
            p + "attn.out_proj.weight": b.proj.weight,
            p + "norm_2.weight": b.ln2.weight,
            p + "ffn.up_proj.weight": b.fc.weight,
            p + "ffn.down_proj.weight": b.out.weight,
        }
    return transformers.MptForCausalLM(config), state


def _gpt2(transformers, model: GPT, eos_id: int):
    cfg = model.cfg
    config = transformers.GPT2Config(
        vocab_size=cfg.vocab_size, n_positions=cfg.context_length, n_embd=cfg.d_model, n_layer=cfg.n_layers,
        n_head=cfg.n_heads, activation_function="gelu", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        layer_norm_epsilon=1e-5, tie_word_embeddings=True, eos_token_id=eos_id, bos_token_id=eos_id,
    )  # fmt: skip
    zero = torch.zeros(cfg.d_model)
    state = {
        "transformer.wte.weight": model.tok.weight,
        "transformer.wpe.weight": model.pos.weight,
        "transformer.ln_f.weight": model.ln_f.weight,
        "transformer.ln_f.bias": zero if model.ln_f.bias is None else model.ln_f.bias,
    }

    def linear(name: str, layer: torch.nn.Linear) -> dict:  # Conv1D holds (in, out)
        bias = torch.zeros(layer.out_features) if layer.bias is None else layer.bias
        return {f"{name}.weight": layer.weight.T, f"{name}.bias": bias}

    def norm(name: str, layer: torch.nn.LayerNorm) -> dict:
        return {f"{name}.weight": layer.weight, f"{name}.bias": zero if layer.bias is None else layer.bias}

    for i, b in enumerate(model.blocks):
        p = f"transformer.h.{i}."
        state |= norm(p + "ln_1", b.ln1) | linear(p + "attn.c_attn", b.qkv) | linear(p + "attn.c_proj", b.proj)
        state |= norm(p + "ln_2", b.ln2) | linear(p + "mlp.c_fc", b.fc) | linear(p + "mlp.c_proj", b.out)
    return transformers.GPT2LMHeadModel(config), state


def to_transformers(model: GPT, eos_id: int, where: str):
    """``model`` as a transformers causal LM (fp32, eval mode) with every weight copied; ``eos_id`` is its
    tokenizer's end-of-sequence id (also the start of an empty context)."""
    transformers = transformers_package("export_hf needs")
    build = _mpt if family(model, where) == "mpt" else _gpt2
    hf, state = build(transformers, model, eos_id)
    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in state.items()}
    missing, unexpected = hf.load_state_dict(state, strict=False)
    untied = [k for k in missing if k != "lm_head.weight"]  # the head is tied to the token embedding
    if untied or unexpected:
        raise RuntimeError(f"export mapping out of date with transformers: missing {untied}, unexpected {unexpected}")
    hf.tie_weights()
    return hf.eval()


def _byte_level_bpe():
    """A `tokenizers` tokenizer that gives UTF-8 byte b the id b and ``EOS_TOKEN`` the id 256, like
    :class:`proxyscale.data.tokenizer.ByteTokenizer`: byte-level BPE with the 256 bytes and no merges."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    char = {b: chr(b) for b in printable} | {b: chr(256 + i) for i, b in enumerate(others)}  # GPT-2's byte map
    tok = Tokenizer(models.BPE(vocab={char[b]: b for b in range(256)} | {EOS_TOKEN: 256}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([EOS_TOKEN])
    return tok


def hf_tokenizer(spec: dict, context_length: int):
    """The workflow's tokenizer (a config entry, :func:`proxyscale.data.tokenizer.make_tokenizer`) as a
    ``PreTrainedTokenizerFast`` that tokenises exactly alike, with its end-of-sequence token and the
    model's context length."""
    transformers = transformers_package("export_hf needs")
    ours = make_tokenizer(spec)
    backend = _byte_level_bpe() if spec.get("kind", "byte") == "byte" else ours.backend
    eos = backend.id_to_token(ours.eos_id)
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token=eos, bos_token=eos, model_max_length=context_length
    )


def export_model(model: GPT, meta: dict, tokenizer: dict, out: str | Path, where: str) -> dict:
    """Write a trained ``model`` (its training summary ``meta``, its tokenizer's config entry ``tokenizer``)
    to the directory ``out`` as a transformers model with its tokenizer (``save_pretrained``, safetensors)
    and ``proxyscale.json``, what it was trained on and as; whole or not at all. Returns that record."""
    hf_tok = hf_tokenizer(tokenizer, model.context_length)
    hf = to_transformers(model, hf_tok.eos_token_id, where)
    record = {"family": hf.config.model_type, **meta}
    with atomic_dir(out) as tmp:
        hf.save_pretrained(tmp)
        hf_tok.save_pretrained(tmp)
        save_json(record, Path(tmp) / "proxyscale.json")
    return record
