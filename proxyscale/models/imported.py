"""Language models trained elsewhere, in Hugging Face ``transformers`` format, for the correlation experiment.

A config's ``models:`` block names, per (size, distribution), a directory saved with ``save_pretrained``
or a hub name at a revision (:func:`proxyscale.config.imported_checkpoint`). :func:`load_imported` loads
the model and its own tokenizer and checks them, each failure one line naming the config key: a missing
directory, a hub model that is neither reachable nor cached, an architecture ``transformers`` does not
know, a model that is not a causal language model, a tokenizer with more tokens than the model has
embeddings. ``transformers`` is imported here only (the ``hf`` extra); a checkpoint's own Python code
runs only when its entry sets ``trust_remote_code``, with a warning.

The returned :class:`ImportedLM` scores tokens the way the workflow's own GPT does
(:meth:`ImportedLM.per_token`), so one evaluation loop serves both; its tokenizer is a
:class:`proxyscale.data.tokenizer.FastTokenizer` over the model's Rust tokenizer, whose start token
(beginning-of-sequence, else end-of-sequence) stands in for an empty context.
"""

from __future__ import annotations

import importlib
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from proxyscale.data.tokenizer import FastTokenizer
from proxyscale.errors import ConfigError, DataError, reason
from proxyscale.losses import PerToken

_CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_seq_len", "max_sequence_length", "seq_length")


def transformers_package(needed_by: str):
    """The ``transformers`` package (the ``hf`` extra), imported only where a job needs it; without it, one
    line saying what ``needed_by`` it (the line's start, e.g. "export_hf needs") and how to install it."""
    try:
        import transformers
    except ImportError:
        raise ConfigError(f"{needed_by} the 'transformers' package: pip install -e \".[hf]\"") from None
    return transformers


@dataclass(frozen=True)
class Source:
    """Where one checkpoint (or its tokenizer) is read from, as ``from_pretrained`` takes it."""

    name: str  # a directory or a hub name
    revision: str | None
    where: str  # the config key, for messages
    hub: bool

    def kwargs(self, trust_remote_code: bool) -> dict:
        return {"revision": self.revision, "trust_remote_code": trust_remote_code}

    def describe(self) -> str:
        return f"'{self.name}' at revision '{self.revision}'" if self.hub else f"directory '{self.name}'"

    def unreachable(self, exc: Exception) -> ConfigError:
        """The one line for a checkpoint that cannot be read (offline hub name, missing or incomplete files)."""
        if self.hub:
            return ConfigError(
                f"{self.where}: cannot load {self.describe()} from the Hugging Face hub or its cache ({reason(exc)}); "
                f"without network, download it where there is one (hf download {self.name} --revision "
                f"{self.revision} --local-dir DIR), copy DIR here and give path: DIR instead of hub"
            )
        return ConfigError(f"{self.where}: cannot load the checkpoint in {self.describe()} ({reason(exc)})")


def model_source(entry: dict) -> Source:
    """The checkpoint of an imported entry (``path``, or ``hub`` with ``revision``)."""
    if "path" in entry:
        if not Path(entry["path"]).is_dir():
            raise DataError(f"{entry['where']}.path: directory '{entry['path']}' does not exist")
        return Source(entry["path"], None, entry["where"], hub=False)
    return Source(entry["hub"], entry["revision"], entry["where"], hub=True)


def checkpoint_directory(entry: dict) -> Path:
    """The local directory of an imported entry's checkpoint: its ``path``, or its hub revision downloaded
    once into the Hugging Face cache (for what reads the files themselves, as conversion does)."""
    source = model_source(entry)
    if not source.hub:
        return Path(source.name)
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(source.name, revision=source.revision))
    except Exception as exc:  # offline, unknown name or revision: each its own hub error class
        raise source.unreachable(exc) from None


def tokenizer_source(entry: dict) -> Source:
    """The entry's ``tokenizer`` (a directory, else a hub name on its default branch), or the model's own."""
    name = entry.get("tokenizer")
    if name is None:
        return model_source(entry)
    where = f"{entry['where']}.tokenizer"
    if Path(name).is_dir():
        return Source(name, None, where, hub=False)
    return Source(name, "main", where, hub=True)


class ImportedLM(torch.nn.Module):
    """A ``transformers`` causal language model with the scoring interface of the workflow's GPT."""

    def __init__(self, model: torch.nn.Module, context_length: int):
        super().__init__()
        self.model = model
        self.context_length = context_length

    def per_token(self, idx: torch.Tensor, targets: torch.Tensor, fn: PerToken) -> torch.Tensor:
        """``fn(logits, targets)`` at every position, one row at a time so that at most one row's
        logits are upcast to fp32 (a large vocabulary times a long context)."""
        logits = self.model(input_ids=idx).logits
        return torch.stack([fn(logits[i : i + 1].float(), targets[i : i + 1])[0] for i in range(len(idx))])


@dataclass(frozen=True)
class Imported:
    """A loaded checkpoint: the model, its tokenizer, and what the compute table records of it."""

    model: ImportedLM
    tokenizer: FastTokenizer
    record: dict


def _import_modules(entry: dict) -> None:
    for name in entry.get("modules", []):
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ConfigError(f"{entry['where']}.modules: cannot import '{name}' ({exc})") from None


def _architecture(transformers, source: Source, trust: bool) -> dict:
    """The checkpoint's raw config.json, after checking that its architecture can be built."""
    try:
        raw, _ = transformers.PretrainedConfig.get_config_dict(source.name, revision=source.revision)
    except OSError as exc:
        raise source.unreachable(exc) from None
    kind = raw.get("model_type")
    known = transformers.models.auto.configuration_auto.CONFIG_MAPPING
    if kind in known or (trust and "auto_map" in raw):
        return raw
    remote = " (it ships its own code: set trust_remote_code: true if you trust it)" if "auto_map" in raw else ""
    raise ConfigError(
        f"{source.where}: transformers {transformers.__version__} does not know the architecture "
        f"'{kind}' of {source.describe()}{remote}; OLMo's hf_olmo (DataDecide's): give it format: hf_olmo, "
        "which converts it; otherwise install the package that registers the architecture and name it under "
        "modules, or convert the checkpoint to an architecture transformers ships"
    )


def _registered_model_fails(transformers, entry: dict, exc: AttributeError) -> ConfigError:
    """The one line for a model class from ``modules`` that this transformers cannot build (ai2-olmo's
    hf_olmo never calls post_init(), which transformers 5 needs), with the two ways out."""
    return ConfigError(
        f"{entry['where']}.modules: the model class that {', '.join(entry['modules'])} registers does not load "
        f"under transformers {transformers.__version__} ({reason(exc)}); give the checkpoint format: hf_olmo "
        "instead of modules (converted to transformers' own OLMo or Llama, no ai2-olmo), or install the "
        'datadecide extra (pip install -e ".[datadecide]", transformers<5)'
    )


def _context_length(entry: dict, config) -> int:
    if entry.get("context_length"):
        return int(entry["context_length"])
    for key in _CONTEXT_KEYS:
        if getattr(config, key, None):
            return int(getattr(config, key))
    raise ConfigError(
        f"{entry['where']}: the model's config gives no context length ({', '.join(_CONTEXT_KEYS)}); set context_length"
    )


def _tokenizer(transformers, entry: dict, trust: bool) -> FastTokenizer:
    source = tokenizer_source(entry)
    try:
        tok = transformers.AutoTokenizer.from_pretrained(source.name, **source.kwargs(trust))
    except (OSError, ValueError, KeyError) as exc:
        if source.hub and isinstance(exc, OSError):
            raise source.unreachable(exc) from None
        raise ConfigError(
            f"{source.where}: no tokenizer in {source.describe()} ({reason(exc)}); "
            "give tokenizer: a directory or hub name that holds the model's tokenizer"
        ) from None
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is None:
        raise ConfigError(f"{source.where}: the tokenizer of {source.describe()} has no fast (tokenizers) version")
    start = tok.bos_token or tok.eos_token
    return FastTokenizer(backend, source.describe(), start)


def load_imported(entry: dict, device: torch.device) -> Imported:
    """Load and check the checkpoint of an imported entry (module docstring); fp32 weights, eval mode."""
    transformers = transformers_package("models: imported checkpoints need")
    trust = bool(entry.get("trust_remote_code", False))
    if trust:
        logging.warning("%s: trust_remote_code is set: running the Python code the checkpoint ships", entry["where"])
    _import_modules(entry)
    source = model_source(entry)
    raw = _architecture(transformers, source, trust)
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(
            source.name, dtype=torch.float32, **source.kwargs(trust)
        )
    except OSError as exc:
        raise source.unreachable(exc) from None
    except AttributeError as exc:
        if not entry.get("modules"):
            raise
        raise _registered_model_fails(transformers, entry, exc) from None
    except ValueError as exc:
        raise ConfigError(
            f"{source.where}: {source.describe()} ('{raw.get('model_type')}') is not a causal language model "
            f"transformers can load ({reason(exc)})"
        ) from None
    tokenizer = _tokenizer(transformers, entry, trust)
    embeddings = model.get_input_embeddings().num_embeddings
    if tokenizer.vocab_size > embeddings:
        raise ConfigError(
            f"{entry['where']}: its tokenizer ({tokenizer.where}) has {tokenizer.vocab_size} tokens but the model "
            f"only {embeddings} embeddings: not this model's tokenizer (set tokenizer: to the right one)"
        )
    params = int(entry.get("params") or sum(p.numel() for p in model.parameters()))
    tokens = int(entry["tokens"]) if "tokens" in entry else math.ceil(entry["tokens_per_param"] * params)
    context = _context_length(entry, model.config)
    record = {
        "params": params,
        "tokens": tokens,
        "flops": 6.0 * params * tokens,
        "architecture": raw.get("model_type"),
        "source": source.name,
        "revision": source.revision,
        "context_length": context,
        "tokenizer": tokenizer.fingerprint,
        "vocab_size": tokenizer.vocab_size,
    }
    return Imported(ImportedLM(model.to(device).eval(), context), tokenizer, record)
