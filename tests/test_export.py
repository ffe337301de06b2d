"""Models trained here, out: the GPT as transformers' MPT or GPT-2 with every weight copied, its tokenizer
as a PreTrainedTokenizerFast that tokenises alike, lm-evaluation-harness scoring an exported proxy
offline, and the workflow's export_hf read back through models: with the trained model's losses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import needs_lm_eval, needs_transformers, run_snakemake, tiny_config, write_config
from proxyscale.data.tokenizer import ByteTokenizer, FastTokenizer, train_bpe
from proxyscale.errors import ConfigError
from proxyscale.models.architecture import GPTConfig
from proxyscale.models.export import export_model, family, hf_tokenizer, to_transformers
from proxyscale.models.gpt import GPT

TEXT = ["naïve café — 東京 and ASCII text\n", "The quick brown fox jumps over the lazy dog. " * 3]


def trained_like(position: str, bias: bool, heads: int = 4, seed: int = 0) -> GPT:
    """A random GPT whose weights and biases are far from their initialisation, as a trained model's are."""
    torch.manual_seed(seed)
    model = GPT(GPTConfig(257, 32, d_model=20, n_layers=2, n_heads=heads, position=position, bias=bias)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model


@pytest.mark.parametrize(
    "position, bias, heads, kind",
    [
        ("alibi", False, 4, "mpt"),
        ("alibi", False, 5, "mpt"),
        ("learned", True, 4, "gpt2"),
        ("learned", False, 2, "gpt2"),
    ],
)
def test_an_exported_model_gives_the_trained_models_logits(position, bias, heads, kind):
    needs_transformers()
    model = trained_like(position, bias, heads)  # 5 heads: ALiBi's slopes for a head count not a power of 2
    hf = to_transformers(model, eos_id=256, where="sizes.s")
    assert family(model, "sizes.s") == kind == hf.config.model_type
    idx = torch.randint(0, 257, (3, 32), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours, theirs = model(idx), hf(input_ids=idx).logits
    assert ours.abs().max() > 3  # logits far from zero: biases and weights matter
    torch.testing.assert_close(theirs, ours, rtol=0, atol=1e-5)


def test_alibi_with_biases_is_refused_in_one_line():
    with pytest.raises(ConfigError) as err:
        family(trained_like("alibi", True), "sizes.xs")
    message = str(err.value)
    assert "\n" not in message and message.startswith("sizes.xs: ") and "bias: false" in message


def test_the_exported_tokenizer_tokenises_as_the_workflows_own(tmp_path):
    needs_transformers()
    byte = hf_tokenizer({"kind": "byte"}, 64)
    for text in TEXT:
        assert byte.encode(text, add_special_tokens=False) == ByteTokenizer().encode(text)
        assert byte.decode(ByteTokenizer().encode(text)) == text
    assert byte.eos_token_id == ByteTokenizer.eos_id == 256 and len(byte) == 257
    path = tmp_path / "bpe.json"
    train_bpe(TEXT * 5, 300).save(str(path))
    bpe, ours = hf_tokenizer({"kind": "bpe", "path": str(path)}, 64), FastTokenizer(train_bpe(TEXT * 5, 300), "bpe")
    for text in TEXT:
        assert bpe.encode(text, add_special_tokens=False) == ours.encode(text)
    assert bpe.eos_token_id == ours.eos_id and bpe.model_max_length == 64


def continuation_logprob(model: GPT, context: str, continuation: str) -> float:
    """log p(continuation | context) under ``model``, over UTF-8 byte tokens, summed, by hand."""
    ids = torch.tensor([ByteTokenizer().encode(context + continuation)])
    with torch.no_grad():
        logits = model(ids[:, :-1])
    logp = torch.log_softmax(logits.double(), dim=-1)
    start = len(context.encode("utf-8"))
    return float(sum(logp[0, t - 1, ids[0, t]].item() for t in range(start, ids.shape[1])))


def test_lm_evaluation_harness_scores_an_exported_proxy_offline_as_the_model_does(tmp_path):
    """lm_eval (the CLI, from PyPI) loads the exported directory and scores a task defined from a local file;
    each document's log-likelihood is the trained model's, summed over the continuation's tokens."""
    needs_transformers()
    needs_lm_eval()
    model = trained_like("alibi", False)
    export_model(model, {"params": 1}, {"kind": "byte"}, tmp_path / "model", "sizes.s")
    docs = [("The capital of France is", " Paris"), ("One, two,", " three"), ("naïve", " café")]
    data = tmp_path / "docs.jsonl"
    data.write_text("".join(json.dumps({"context": c, "continuation": t}) + "\n" for c, t in docs))
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks/proxyscale_docs.yaml").write_text(
        "task: proxyscale_docs\ndataset_path: json\n"
        f"dataset_kwargs:\n  data_files: {{test: {data}}}\ntest_split: test\noutput_type: loglikelihood\n"
        'doc_to_text: "{{context}}"\ndoc_to_target: "{{continuation}}"\ntarget_delimiter: ""\n'
        "metric_list:\n  - metric: perplexity\n"
    )
    offline = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    cmd = [
        sys.executable, "-m", "lm_eval", "run", "--model", "hf", "--model_args",
        f"pretrained={tmp_path / 'model'},dtype=float32", "--tasks", "proxyscale_docs", "--include_path",
        str(tmp_path / "tasks"), "--device", "cpu", "--batch_size", "2", "--output_path", str(tmp_path / "out"),
        "--log_samples",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=offline)
    assert done.returncode == 0, done.stderr[-3000:]
    (samples,) = (tmp_path / "out").rglob("samples_proxyscale_docs_*.jsonl")
    rows = sorted((json.loads(line) for line in samples.read_text().splitlines()), key=lambda r: r["doc_id"])
    got = [float(r["resps"][0][0][0]) for r in rows]
    want = [continuation_logprob(model, c, t) for c, t in docs]
    assert got == pytest.approx(want, abs=1e-4)


@pytest.mark.workflow
def test_export_hf_round_trip_gives_the_trained_models_per_sample_losses(tmp_path):
    """export_hf on the tiny config (one size MPT, one GPT-2 with biases), then a config that imports the
    exported directories through models:; every per-sample loss equals the trained model's."""
    needs_transformers()
    config = tiny_config()
    config.pop("attribution"), config.pop("selection")
    config["distributions"].pop("wiki")  # three are enough for the report (the mixture still reads wiki)
    config["sizes"]["tiny"]["bias"] = False  # ALiBi without biases: MPT
    config["sizes"]["ref"]["position"] = "learned"  # biases kept: GPT-2
    trained = tmp_path / "trained"
    trained.mkdir()
    write_config(config, trained)
    offline = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    done = run_snakemake(trained, "--cores", "2", "correlation_report", "export_hf", env=offline)
    assert done.returncode == 0, done.stderr[-3000:]
    exports = trained / "results/export/hf"
    assert json.loads((exports / "web/tiny/config.json").read_text())["model_type"] == "mpt"
    assert json.loads((exports / "web/ref/config.json").read_text())["model_type"] == "gpt2"
    record = json.loads((exports / "web/ref/proxyscale.json").read_text())
    assert record["family"] == "gpt2" and record["params"] > 0

    imported = {k: v for k, v in config.items() if k != "sizes"}
    imported["models"] = {
        size: {"tokens": 1, "checkpoints": {d: {"path": str(exports / d / size)} for d in config["distributions"]}}
        for size in ("tiny", "ref")
    }
    back = tmp_path / "imported"
    back.mkdir()
    write_config(imported, back)
    done = run_snakemake(back, "--cores", "2", "correlation_report", env=offline)
    assert done.returncode == 0, done.stderr[-3000:]
    for dist in config["distributions"]:
        for size in ("tiny", "ref"):
            for test in config["test_sets"]:
                ours = pd.read_parquet(trained / f"results/losses/{dist}/{size}/{test}.parquet")
                theirs = pd.read_parquet(back / f"results/losses/{dist}/{size}/{test}.parquet")
                assert theirs["example_id"].tolist() == ours["example_id"].tolist()
                assert theirs["n_tokens"].tolist() == ours["n_tokens"].tolist()
                np.testing.assert_allclose(theirs["loss"], ours["loss"], rtol=0, atol=1e-5)
    assert not list(Path(back / "results").rglob("checkpoints"))  # nothing retrained
