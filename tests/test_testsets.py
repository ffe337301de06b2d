"""Test-set builders: prompts, gold continuations, choices, and format errors."""

import json

import pytest

from conftest import DATA
from proxyscale.data import testsets
from proxyscale.errors import DataError


def test_squad_prompt_and_answer(tmp_path):
    path = tmp_path / "squad.json"
    data = {
        "data": [
            {
                "title": "t",
                "paragraphs": [
                    {
                        "context": "Paris is in France.",
                        "qas": [
                            {"question": "Where is Paris?", "answers": [{"text": "France", "answer_start": 12}]},
                            {"question": "Unanswerable?", "answers": []},
                        ],
                    }
                ],
            }
        ]
    }
    path.write_text(json.dumps(data))
    (c,) = testsets.squad_candidates(path)
    assert c.context == "Paris is in France.\nQuestion: Where is Paris?\nAnswer:" and c.continuation == " France"
    assert len(testsets.squad_candidates(DATA / "test/squad_v1.1_dev_part_a.json.xz")) == 4961


def test_lambada_last_word(tmp_path):
    path = tmp_path / "l.jsonl"
    path.write_text(json.dumps({"text": "he looked at the old  dog"}) + "\n")
    (c,) = testsets.lambada_candidates(path)
    assert (c.context, c.continuation) == ("he looked at the old ", " dog")


def test_hellaswag_items(tmp_path):
    cands = testsets.hellaswag_candidates(DATA / "test/hellaswag_val_2000.txt.bz2")
    assert len(cands) == 8000
    first = [c for c in cands if c.example_id == 0]
    assert [c.is_gold for c in first] == [False, False, False, True]
    assert first[3].continuation == " starts pulling up roofing on a roof."
    bad = tmp_path / "h.txt"
    bad.write_text("ctx\n7\na\nb\nc\nd\n")
    with pytest.raises(DataError, match="gold label '7'"):
        testsets.hellaswag_candidates(bad)
    bad.write_text("ctx\n1\na\nb\n")
    with pytest.raises(DataError, match="not a multiple of 6"):
        testsets.hellaswag_candidates(bad)


def test_triviaqa_canonical_alias():
    assert testsets.canonical_alias(["Park Grove (1895)", "York, UK", "York", "YORK", "City of York"]) == "York"
    assert testsets.canonical_alias(["(Harry) Sinclair Lewis", "Grace Hegger", "Sinclair Lewis"]) == "Sinclair Lewis"
    cands = testsets.triviaqa_candidates(DATA / "test/triviaqa_rc_2000.jsonl.xz")
    assert cands[1].context == "Question: Where in England was Dame Judi Dench born?\nAnswer:"
    assert cands[1].continuation == " York"


def test_subsample_keeps_whole_examples():
    cands = [testsets.Candidate(i // 4, "c", str(i), i % 4, i % 4 == 0) for i in range(40)]
    kept = testsets.subsample(cands, 3, seed=1)
    assert len(kept) == 12 and sorted({c.example_id for c in kept}) == [0, 1, 2]
    assert kept == testsets.subsample(cands, 3, seed=1)
