"""Checkpoints trained elsewhere (the config's ``models:``): tiny random ``transformers`` models saved
offline are loaded, checked and scored with their own tokenizers; losses of models whose tokenizers
differ are compared per byte; the workflow runs the correlation experiment on imported sizes alone and
mixed with a trained one, without the network."""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from transformers_models import tiny_model

from conftest import job_counts, needs_transformers, run_snakemake, tiny_config, validated, write_config
from proxyscale.config import check_config, correlation_distributions, correlation_sizes, proxies
from proxyscale.correlation.analysis import BITS_PER_BYTE, NATS_PER_TOKEN, comparable_losses
from proxyscale.correlation.evaluate import candidate_scores, per_sample, retokenise, scored_bytes
from proxyscale.data.prepare import tokenise_candidates
from proxyscale.data.testsets import Candidate
from proxyscale.data.tokenizer import ByteTokenizer
from proxyscale.errors import ConfigError, DataError

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """Two architectures with different tokenizers: a GPT-NeoX proxy (300 tokens) and a Llama reference."""
    needs_transformers()
    root = tmp_path_factory.mktemp("checkpoints")
    return {
        "neox": tiny_model(root / "neox", "gpt_neox", 16, 300),
        "llama": tiny_model(root / "llama", "llama", 32, 400, seed=1),
    }


def entry(path, **extra) -> dict:
    return {"path": str(path), "tokens": 1000, "where": "models.s.checkpoints.d", **extra}


# Per-byte losses by hand


def test_losses_are_compared_per_byte_where_tokenizers_differ():
    losses = pd.DataFrame(
        {"size": ["a", "b"], "loss": [2.0, 1.0], "n_tokens": [3, 4], "n_bytes": [6.0, 2.0], "tokenizer": ["x", "y"]}
    )
    per_byte, unit = comparable_losses(losses)
    # summed nats over bytes, in bits: 2 x 3 / 6 / ln 2 and 1 x 4 / 2 / ln 2
    assert unit == BITS_PER_BYTE
    np.testing.assert_allclose(per_byte["loss"], [1 / math.log(2), 2 / math.log(2)])
    same, unit = comparable_losses(losses.assign(tokenizer="x"))
    assert unit == NATS_PER_TOKEN and same["loss"].tolist() == [2.0, 1.0]
    with pytest.raises(DataError, match="forcerun build_testset"):
        comparable_losses(losses.assign(n_bytes=[6.0, np.nan]))


def test_scored_bytes_are_the_whole_continuations_or_the_tokens_kept():
    frame = pd.DataFrame({"continuation_ids": [np.arange(6), np.arange(6)], "continuation_bytes": [6, 6]})
    kept = [np.arange(6), np.arange(2)]
    assert scored_bytes(frame, kept, ByteTokenizer()).tolist() == [6.0, 2.0]
    assert np.isnan(scored_bytes(frame, kept)[1])  # cut, and no tokenizer to count the kept tokens' bytes
    assert np.isnan(scored_bytes(frame.drop(columns="continuation_bytes"), kept[:1] * 2)).all()


class Uniform(torch.nn.Module):
    """Equal logits over ``vocab`` tokens: every token's loss is ln(vocab) nats."""

    def __init__(self, vocab: int, context_length: int = 512):
        super().__init__()
        self.vocab, self.context_length = vocab, context_length

    def per_token(self, idx, targets, fn):
        return fn(torch.zeros(*idx.shape, self.vocab), targets)


def test_a_uniform_model_scores_log2_of_its_vocabulary_per_byte_of_bytes(checkpoints):
    from proxyscale.models.imported import load_imported

    text = [Candidate(0, "Question: who?", " Answer: the fox jumps"), Candidate(1, "", "héllo wörld")]
    frame = tokenise_candidates(text, "continuation", ByteTokenizer())
    assert frame["continuation_bytes"].tolist() == [22, 13] and frame["continuation"][1] == "héllo wörld"
    as_bytes = per_sample(candidate_scores(Uniform(257), frame, 2, CPU, ByteTokenizer()))
    np.testing.assert_allclose(as_bytes["loss"], math.log(257))  # nats per token
    assert as_bytes["n_bytes"].tolist() == as_bytes["n_tokens"].tolist() == [22, 13]
    bpe = load_imported(entry(checkpoints["neox"]), CPU).tokenizer
    retok = retokenise(frame, bpe, "test.parquet")
    as_bpe = per_sample(candidate_scores(Uniform(300), retok, 2, CPU, bpe))
    tokens = [len(bpe.encode(" Answer: the fox jumps")), len(bpe.encode("héllo wörld"))]
    assert as_bpe["n_tokens"].tolist() == tokens and as_bpe["n_bytes"].tolist() == [22, 13]
    both, unit = comparable_losses(
        pd.concat([as_bytes.assign(size="byte"), as_bpe.assign(size="bpe")], ignore_index=True)
    )
    # per byte: ln(vocab) x tokens / bytes / ln 2 = log2(vocab) x tokens / bytes
    expected = [math.log2(257)] * 2 + [math.log2(300) * t / b for t, b in zip(tokens, [22, 13])]
    assert unit == BITS_PER_BYTE
    np.testing.assert_allclose(both["loss"], expected)
    with pytest.raises(DataError, match="older proxyscale"):
        retokenise(frame.drop(columns="continuation_bytes"), bpe, "old.parquet")


def test_an_imported_model_scores_its_continuations_as_transformers_does(checkpoints):
    from transformers import AutoModelForCausalLM

    from proxyscale.models.imported import load_imported

    imported = load_imported(entry(checkpoints["llama"]), CPU)
    text = [Candidate(0, "It was the best of times,", " it was the worst of times")]
    frame = retokenise(tokenise_candidates(text, "continuation", ByteTokenizer()), imported.tokenizer, "t")
    ours = candidate_scores(imported.model, frame, 1, CPU, imported.tokenizer)["loss"].item()
    context, continuation = frame["context_ids"][0], frame["continuation_ids"][0]
    ids = torch.tensor(np.concatenate([context, continuation]))[None]
    labels = ids.clone()
    labels[0, : len(context)] = -100  # the loss on the continuation only
    hf = AutoModelForCausalLM.from_pretrained(checkpoints["llama"])
    assert ours == pytest.approx(hf(input_ids=ids, labels=labels).loss.item(), rel=1e-5)


def test_an_imported_checkpoint_is_recorded_with_its_parameters_tokens_and_tokenizer(checkpoints, caplog):
    from proxyscale.models.imported import load_imported

    by_ratio = entry(checkpoints["neox"], tokens_per_param=20)
    del by_ratio["tokens"]
    imported = load_imported(by_ratio, CPU)
    params = sum(p.numel() for p in imported.model.parameters())
    record = imported.record
    assert (
        record["params"] == params and record["tokens"] == 20 * params and record["flops"] == 6.0 * params * 20 * params
    )
    assert record["architecture"] == "gpt_neox" and record["context_length"] == 64 and record["vocab_size"] == 300
    other = load_imported(entry(checkpoints["llama"], params=12345, trust_remote_code=True), CPU)
    assert other.record["params"] == 12345 and other.record["tokens"] == 1000
    assert other.record["tokenizer"] != record["tokenizer"]
    assert "trust_remote_code is set" in caplog.text  # the warning, only where asked for


# One line for each way a checkpoint can be wrong


def test_each_bad_checkpoint_is_one_line_naming_its_key(checkpoints, tmp_path, monkeypatch):
    from proxyscale.models.imported import load_imported

    with pytest.raises(DataError, match=r"^models.s.checkpoints.d.path: directory '.*nowhere' does not exist$"):
        load_imported(entry(tmp_path / "nowhere"), CPU)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty_cache"))
    hub = {"hub": "allenai/DataDecide-c4-4M", "revision": "main", "tokens": 1, "where": "models.s.checkpoints.d"}
    with pytest.raises(ConfigError) as offline:
        load_imported(hub, CPU)
    message = str(offline.value)
    assert message.startswith("models.s.checkpoints.d: cannot load 'allenai/DataDecide-c4-4M' at revision 'main'")
    assert "hf download allenai/DataDecide-c4-4M --revision main --local-dir DIR" in message and "\n" not in message
    olmo = tmp_path / "olmo"
    olmo.mkdir()
    (olmo / "config.json").write_text(json.dumps({"model_type": "hf_olmo", "d_model": 64}))
    with pytest.raises(
        ConfigError, match=r"does not know the architecture 'hf_olmo' .*: give it format: hf_olmo, which converts it"
    ) as unknown:
        load_imported(entry(olmo), CPU)
    assert "trust_remote_code" not in str(unknown.value)
    (olmo / "config.json").write_text(json.dumps({"model_type": "hf_olmo", "auto_map": {"AutoConfig": "x.Y"}}))
    with pytest.raises(ConfigError, match="it ships its own code: set trust_remote_code: true if you trust it"):
        load_imported(entry(olmo), CPU)  # never runs shipped code unless asked
    with pytest.raises(ConfigError, match=r"cannot import 'no_such_module_x'"):
        load_imported(entry(olmo, modules=["no_such_module_x"]), CPU)
    mismatch = entry(checkpoints["neox"], tokenizer=str(checkpoints["llama"]))
    with pytest.raises(ConfigError, match=r"has 351 tokens but the model only 300 embeddings: not this model's"):
        load_imported(mismatch, CPU)


# Config


def imported_config(paths: dict[str, Path]) -> dict:
    """The tiny config's 4 distributions, with two imported sizes (GPT-NeoX proxy, Llama reference) and
    no other experiment; ``paths`` maps (size, dist) names 'size/dist' to checkpoint directories."""
    config = tiny_config()
    for key in ("attribution", "selection", "sizes"):
        config.pop(key)
    config["models"] = {
        "neox": {"tokens": 20_000, "checkpoints": {}},
        "llama": {"tokens_per_param": 20, "checkpoints": {}},
    }
    for name, path in paths.items():
        size, dist = name.split("/")
        config["models"][size]["checkpoints"][dist] = {"path": str(path)}
    config["reference"] = "llama"
    return config


def test_config_checks_of_imported_sizes(tmp_path):
    here = {f"{s}/{d}": tmp_path for s in ("neox", "llama") for d in ("books", "wiki", "web", "mixture")}
    config = validated(imported_config(here))
    check_config(config)
    assert correlation_sizes(config) == ["neox", "llama"] and proxies(config) == ["neox"]
    assert correlation_distributions(config) == ["books", "wiki", "web", "mixture"]
    cases = [
        (lambda c: c["sizes"].update(neox={"d_model": 8, "n_layers": 1, "n_heads": 2, "batch_size": 8, "lr": 0.1}),
         "models.neox: 'neox' is also under sizes"),
        (lambda c: c["models"]["neox"]["checkpoints"].pop("web"), r"models.neox.checkpoints: no model for web"),
        (lambda c: c["models"]["neox"]["checkpoints"]["web"].update(hub="x/y"), "give path .* or hub"),
        (lambda c: c["models"]["neox"]["checkpoints"]["web"].update(path="nowhere"),
         "models.neox.checkpoints.web.path: directory 'nowhere' does not exist"),
        (lambda c: c["models"]["neox"]["checkpoints"]["web"].update(tokens_per_param=5),
         "give tokens or tokens_per_param"),
        (lambda c: c["models"]["llama"].pop("tokens_per_param"), "models.llama.checkpoints.books: give tokens or"),
        (lambda c: c.update(reference="big"), "reference: size 'big' is not defined under sizes or models"),
    ]  # fmt: skip
    for change, message in cases:
        bad = validated(imported_config(here))
        change(bad)
        with pytest.raises(ConfigError, match=message):
            check_config(bad)
    # nothing trained needs no sources, unless a test set or the tokenizer is made from them
    bare = imported_config(here)
    del bare["sources"], bare["distributions"], bare["test_sets"]["pile"]
    check_config(validated(bare))
    with pytest.raises(ConfigError, match="test_sets.pile: format 'pile' draws from the sources' held-out documents"):
        check_config(validated({**bare, "test_sets": {**bare["test_sets"], "pile": {"format": "pile"}}}))
    with pytest.raises(ConfigError, match="tokenizer.kind: 'bpe' is trained on the sources, and there are none"):
        check_config(validated({**bare, "tokenizer": {"kind": "bpe", "vocab_size": 300}}))
    hub = validated(imported_config(here))
    hub["models"]["neox"]["checkpoints"]["web"] = {"hub": "org/model"}
    with pytest.raises(ConfigError, match=r"models.neox.checkpoints.web.revision: required with hub"):
        check_config(hub)
    # a distribution only imported models have cannot be trained on by a trained size
    elsewhere = validated(imported_config({**here, "neox/dolma": tmp_path, "llama/dolma": tmp_path}))
    check_config(elsewhere)
    assert correlation_distributions(elsewhere)[-1] == "dolma"
    elsewhere["sizes"] = {"tiny": {"d_model": 8, "n_layers": 1, "n_heads": 2, "batch_size": 8, "lr": 0.1}}
    with pytest.raises(ConfigError, match="distribution 'dolma' exists only as imported models"):
        check_config(validated(elsewhere))


# The workflow, offline


@pytest.mark.workflow
def test_the_correlation_report_runs_on_imported_models_alone_then_mixed_with_a_trained_size(tmp_path):
    needs_transformers()
    dists = ("books", "wiki", "web", "mixture")
    paths = {}
    for i, dist in enumerate(dists):  # each model its own seed, as models trained on different data
        paths[f"neox/{dist}"] = tiny_model(tmp_path / "ckpt" / f"neox-{dist}", "gpt_neox", 16, 300, seed=i)
        paths[f"llama/{dist}"] = tiny_model(tmp_path / "ckpt" / f"llama-{dist}", "llama", 32, 400, seed=10 + i)
    work = tmp_path / "work"
    work.mkdir()
    write_config(imported_config(paths), work)
    offline = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "no_cache")}
    done = run_snakemake(work, "--cores", "2", "correlation_report", env=offline)
    assert done.returncode == 0, done.stderr[-3000:]
    results = work / "results"
    assert not (results / "checkpoints").exists()  # nothing trained
    report = (results / "correlation/report.md").read_text()
    assert "Losses are in bits per byte in every table and figure" in report
    assert "each imported model's own tokenizer (neox, llama)" in report
    assert "Every size is imported (llama, neox): one checkpoint per distribution of 4 training" in report
    assert "Each size was trained on" not in report and "trained elsewhere on data unknown (imported)" in report
    assert "Whether a run sees any of its data more than once: unknown (imported)." in report
    compute = pd.read_parquet(results / "correlation/compute.parquet").set_index("size")
    record = json.loads((results / "imported/books/llama.json").read_text())
    assert compute.loc["llama", "params"] == record["params"] and record["tokens"] == 20 * record["params"]
    assert compute.loc["neox", "tokens"] == 20_000 and (compute["origin"] == "imported").all()
    assert compute.loc["neox", "compute_ratio"] == pytest.approx(record["flops"] / compute.loc["neox", "flops"])
    losses = pd.read_parquet(results / "losses/web/neox/lambada.parquet")
    testset = pd.read_parquet(results / "testsets/lambada.parquet")
    gold = testset[testset["is_gold"]].set_index("example_id")
    # every LAMBADA word fits the context: the bytes scored are the whole continuation's
    assert losses["n_bytes"].tolist() == gold.loc[losses["example_id"], "continuation_bytes"].tolist()
    # and its tokens are the model's own tokenizer's, not the test set's bytes
    from transformers import AutoTokenizer

    own = AutoTokenizer.from_pretrained(paths["neox/web"])
    words = gold.loc[losses["example_id"], "continuation"]
    assert losses["n_tokens"].tolist() == [len(own.encode(w, add_special_tokens=False)) for w in words]
    assert (losses["n_tokens"] < losses["n_bytes"]).any()
    means = pd.read_parquet(results / "correlation/mean_losses.parquet")
    assert sorted(means["size"].unique()) == ["llama", "neox"] and len(means) == 4 * 2 * 4
    assert set(means["loss_unit"]) == {"bits per byte"}  # each table says its unit

    # The proxy trained here instead: only its training and evaluation run; the imported reference is kept.
    mixed = imported_config(paths)
    mixed["models"].pop("neox")
    mixed["sizes"] = {"tiny": {"d_model": 8, "n_layers": 1, "n_heads": 2, "batch_size": 8, "lr": 0.01}}
    write_config(mixed, work)
    plan = run_snakemake(work, "-n", "correlation_report", "--quiet", "rules", env=offline)
    assert plan.returncode == 0, plan.stderr[-3000:]
    assert job_counts(plan.stdout) == Counter(train=4, evaluate=4, correlation=1, correlation_report=1)
    done = run_snakemake(work, "--cores", "2", "correlation_report", env=offline)
    assert done.returncode == 0, done.stderr[-3000:]
    compute = pd.read_parquet(results / "correlation/compute.parquet").set_index("size")
    assert compute["origin"].to_dict() == {"llama": "imported", "tiny": "trained"}
    report = (results / "correlation/report.md").read_text()
    assert "UTF-8 bytes (257 tokens with end-of-sequence) (sizes trained here) and each imported model's" in report
    assert "; the imported sizes (llama) have one checkpoint per distribution, trained elsewhere on data" in report
    assert "No run trained here sees any of its data more than once; for the imported sizes (llama): unknown" in report
    assert "Losses are in bits per byte" in report


@pytest.mark.workflow
def test_an_imported_model_that_cannot_be_loaded_fails_its_job_in_one_line(tmp_path):
    needs_transformers()
    config = imported_config(
        {f"{s}/{d}": tmp_path for s in ("neox", "llama") for d in ("books", "wiki", "web", "mixture")}
    )
    config["test_sets"] = {"lambada": config["test_sets"]["lambada"]}
    config["models"]["neox"]["checkpoints"]["books"] = {"hub": "no-org/no-such-model", "revision": "main"}
    write_config(config, tmp_path)
    offline = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "no_cache")}
    result = run_snakemake(tmp_path, "--cores", "1", "results/imported/books/neox.json", env=offline)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    line = (
        "error in rule evaluate_imported: models.neox.checkpoints.books: cannot load 'no-org/no-such-model' at "
        "revision 'main' from the Hugging Face hub or its cache"
    )
    assert line in result.stderr and "hf download no-org/no-such-model --revision main" in result.stderr
    assert not (tmp_path / "results/losses/books/neox").exists()  # nothing half-written


NO_POST_INIT = """
import torch
from transformers import AutoConfig, AutoModelForCausalLM, PretrainedConfig, PreTrainedModel


class NoPostInitConfig(PretrainedConfig):
    model_type = "no_post_init"


class NoPostInitModel(PreTrainedModel):  # as ai2-olmo's hf_olmo: never calls self.post_init()
    config_class = NoPostInitConfig

    def __init__(self, config):
        super().__init__(config)
        self.lin = torch.nn.Linear(2, 2)


AutoConfig.register("no_post_init", NoPostInitConfig)
AutoModelForCausalLM.register(NoPostInitConfig, NoPostInitModel)
"""


def test_a_registered_model_class_that_transformers_5_cannot_build_is_one_line_with_the_fixes(tmp_path, monkeypatch):
    """ai2-olmo's hf_olmo model never calls post_init(), which transformers 5 needs: loading it through
    modules: fails in one line naming the key, the installed transformers and both ways out."""
    needs_transformers()
    import transformers
    from safetensors.torch import save_file

    if int(transformers.__version__.split(".")[0]) < 5:
        pytest.skip("transformers 4 builds models that never call post_init()")
    (tmp_path / "no_post_init.py").write_text(NO_POST_INIT)
    monkeypatch.syspath_prepend(str(tmp_path))
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text(json.dumps({"model_type": "no_post_init", "architectures": ["NoPostInitModel"]}))
    save_file({"lin.weight": torch.zeros(2, 2), "lin.bias": torch.zeros(2)}, str(ckpt / "model.safetensors"))
    from proxyscale.models.imported import load_imported

    with pytest.raises(ConfigError) as err:
        load_imported(entry(ckpt, modules=["no_post_init"]), CPU)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(
        f"models.s.checkpoints.d.modules: the model class that no_post_init registers does not load under "
        f"transformers {transformers.__version__} (AttributeError: "
    )
    assert "format: hf_olmo instead of modules" in message and 'pip install -e ".[datadecide]"' in message
