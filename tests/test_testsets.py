"""Test-set builders: prompts, gold continuations, choices, and format errors."""

import json

import numpy as np
import pandas as pd
import pytest

from conftest import DATA
from proxyscale.data import testsets
from proxyscale.errors import ConfigError, DataError


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


def test_squad_questions_about_one_paragraph_share_its_passage_and_split_apart_from_others():
    cands = testsets.squad_candidates(DATA / "test/squad_v1.1_dev_part_a.json.xz")
    by_passage = {}
    for c in cands:
        by_passage.setdefault(c.passage, []).append(c)
    assert len(by_passage) < len(cands) / 3  # several questions per paragraph
    assert all(c.context.startswith(p) for p, group in by_passage.items() for c in group)
    frame = pd.DataFrame({"example_id": [c.example_id for c in cands], "passage": [c.passage for c in cands]})
    first, second = testsets.split_by_passage(frame, 100, 200, 0, ("a", "b"), "split")
    assert len(first) == 100 and len(second) == 200
    assert not set(frame["passage"][first]) & set(frame["passage"][second])
    again = testsets.split_by_passage(frame, 100, 200, 0, ("a", "b"), "split")
    assert all(np.array_equal(a, b) for a, b in zip(again, (first, second)))


def test_split_by_passage_takes_whole_passages_in_seeded_order():
    # four passages of two examples: 3 first examples end inside the second passage, whose other
    # example is dropped, so the second part can hold the last two passages (4 examples) but not 5
    frame = pd.DataFrame({"passage": list("aabbccdd")})
    orders = set()
    for seed in range(20):
        first, second = testsets.split_by_passage(frame, 3, 4, seed, ("a", "b"), "split")
        p1, p2 = set(frame["passage"][first]), set(frame["passage"][second])
        assert len(p1) == 2 and len(p2) == 2 and len(second) == 4 and not p1 & p2
        orders.add("".join(sorted(p1)))
    assert len(orders) > 1  # the seed chooses the passages
    with pytest.raises(ConfigError) as err:
        testsets.split_by_passage(frame, 3, 5, 0, ("first", "second"), "'t'", ", or add examples")
    assert str(err.value) == (
        "first + second = 3 + 5 for 't' do not fit in its 8 examples in 4 passages: the two parts share no passage, "
        "so after first = 3, the passages it does not touch hold 4 examples; lower second to 4, or add examples"
    )
    with pytest.raises(
        ConfigError, match=r"^first \+ second = 9 \+ 0 .*: the two parts share no passage, so lower first below 8$"
    ):
        testsets.split_by_passage(frame, 9, 0, 0, ("first", "second"), "'t'")


def test_passage_keys_are_stable_and_tokenised_candidates_carry_them():
    from proxyscale.data.prepare import tokenise_candidates
    from proxyscale.data.tokenizer import make_tokenizer

    assert testsets.passage_key("Paris is in France.") == testsets.passage_key("Paris is in France.")
    assert testsets.passage_key("a") != testsets.passage_key("b") and testsets.passage_key("a") >= 0
    cands = [testsets.Candidate(0, "q1", " a", passage="P"), testsets.Candidate(1, "q2", " b", passage="P")]
    cands.append(testsets.Candidate(2, "", "doc"))
    frame = tokenise_candidates(cands, "continuation", make_tokenizer({"kind": "byte"}))
    key = testsets.passage_key
    assert frame["passage"].tolist() == [key("P"), key("P"), key("doc")]
