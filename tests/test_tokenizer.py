"""Tokenizers: the byte-level BPE trained in the workflow, saved tokenizer files, and the hub's clear
failure without network."""

import os
import subprocess
import sys

import pytest

from conftest import DATA
from proxyscale.data.prepare import iter_source, token_stream
from proxyscale.data.tokenizer import EOS_TOKEN, ByteTokenizer, describe_tokenizer, make_tokenizer, train_bpe
from proxyscale.errors import ConfigError, DataError

WIKI = [{"path": str(DATA / "train/wiki_wikitext2_raw_test.txt.xz"), "format": "wikitext"}]


@pytest.fixture(scope="module")
def bpe_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("bpe") / "bpe.json"
    train_bpe(iter_source(WIKI), 400).save(str(path))
    return path


def test_trained_bpe_has_its_size_an_eos_and_round_trips(bpe_file):
    tok = make_tokenizer({"kind": "bpe", "vocab_size": 400, "path": str(bpe_file)})
    assert tok.vocab_size == 400 and tok.eos_id == tok._tok.token_to_id(EOS_TOKEN)
    text = " = Valkyria Chronicles = \n naïve café, 日本"  # bytes never seen in training still encode
    ids = tok.encode(text)
    assert tok.decode(ids) == text and tok.eos_id not in ids
    assert tok.encode_batch([text, "the"]) == [ids, tok.encode("the")]
    # 143 merges learned from the corpus already save over 40% of the tokens on its common English
    sample = " ".join(list(iter_source(WIKI))[:20])
    assert len(tok.encode(sample)) < 0.6 * len(sample.encode())


def test_bpe_training_is_deterministic_and_saved_files_load_as_hf(bpe_file, tmp_path):
    again = tmp_path / "again.json"
    train_bpe(iter_source(WIKI), 400).save(str(again))
    assert again.read_text() == bpe_file.read_text()
    tok = make_tokenizer({"kind": "hf", "path": str(again)})
    stream = token_stream(["a b", "c"], tok)
    assert stream.tolist() == tok.encode("a b") + [tok.eos_id] + tok.encode("c") + [tok.eos_id]


def test_tokenizer_file_errors(tmp_path, bpe_file):
    with pytest.raises(DataError, match="no such tokenizer file"):
        make_tokenizer({"kind": "hf", "path": str(tmp_path / "none.json")})
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(DataError, match="bad.json: not a tokenizers JSON file"):
        make_tokenizer({"kind": "hf", "path": str(tmp_path / "bad.json")})
    with pytest.raises(ConfigError, match="no end-of-sequence token \\(<eos2>\\)"):
        make_tokenizer({"kind": "hf", "path": str(bpe_file), "eos_token": "<eos2>"})
    with pytest.raises(ConfigError, match="must exceed 257"):
        train_bpe(["abc"], 257)


def test_reports_name_the_tokenizer_of_each_kind():
    byte = "UTF-8 bytes (257 tokens with end-of-sequence)"
    assert describe_tokenizer({"kind": "byte"}) == describe_tokenizer({}) == byte
    bpe = {"kind": "bpe", "vocab_size": 512, "path": "results/tokenizer/bpe.json"}
    assert describe_tokenizer(bpe) == "a byte-level BPE of 512 tokens trained on the sources' training documents"
    assert describe_tokenizer({"kind": "hf", "name": "gpt2"}) == "the tokenizer gpt2"
    assert describe_tokenizer({"kind": "hf", "path": "tok.json"}) == "the tokenizer tok.json"


def test_byte_tokenizer_batch_encoding():
    assert [list(x) for x in ByteTokenizer().encode_batch(["ab", "é"])] == [[97, 98], [0xC3, 0xA9]]


def test_a_hub_tokenizer_without_network_is_one_line_saying_how_to_provide_it():
    code = (
        "from proxyscale.data.tokenizer import make_tokenizer\n"
        "make_tokenizer({'kind': 'hf', 'name': 'EleutherAI/gpt-neox-20b'})\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": "/nonexistent-hf-home"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    last = result.stderr.strip().splitlines()[-1]
    assert "ConfigError: tokenizer 'EleutherAI/gpt-neox-20b' cannot be fetched from the Hugging Face hub" in last
    assert "set tokenizer: {kind: hf, path: tokenizer.json}" in last
