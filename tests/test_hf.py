"""Hugging Face loaders: records in each dataset's schema become the same candidates as the files.

The record builders are tested on plain dicts; the ``datasets`` path is tested on small local JSON
files in the public datasets' schemas, read with ``dataset: json`` (skipped without ``datasets``).
"""

from __future__ import annotations

import json

import pytest

from conftest import needs_datasets
from proxyscale.data import hf, prepare
from proxyscale.data.testsets import Candidate
from proxyscale.errors import ConfigError, DataError

SQUAD = {
    "id": "1",
    "title": "T",
    "context": " Paris is in France. ",
    "question": "Where is Paris?",
    "answers": {"text": ["France", "in France"], "answer_start": [12, 9]},
}
HELLASWAG = {"activity_label": "Baking", "ctx": "She opens the oven", "endings": ["a", "b", "c", "d"], "label": "2"}
TRIVIAQA = {"question": "Capital of Italy?", "answer": {"value": "Rome", "aliases": ["Rome", "ROMA"]}}


def test_record_builders_match_the_file_readers_candidates():
    assert hf.squad_candidates([SQUAD]) == [
        Candidate(
            0, "Paris is in France.\nQuestion: Where is Paris?\nAnswer:", " France", passage="Paris is in France."
        )
    ]
    assert hf.lambada_candidates([{"text": "he said goodbye"}]) == [
        Candidate(0, "he said", " goodbye", passage="he said goodbye")
    ]
    hs = hf.hellaswag_candidates([HELLASWAG])
    assert [c.is_gold for c in hs] == [False, False, True, False] and hs[0].context == "Baking: She opens the oven"
    assert {c.passage for c in hs} == {"Baking: She opens the oven"}
    assert hf.triviaqa_candidates([TRIVIAQA]) == [Candidate(0, "Question: Capital of Italy?\nAnswer:", " Rome")]


def test_records_missing_a_field_or_with_a_bad_label_are_clear_errors():
    with pytest.raises(DataError, match="squad: record has no field 'answers.text'"):
        hf.squad_candidates([{"context": "c", "question": "q"}])
    with pytest.raises(DataError, match="needs 4 endings and a gold label 0-3"):
        hf.hellaswag_candidates([{**HELLASWAG, "label": "7"}])


def _jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


def test_sources_and_test_sets_load_through_datasets(tmp_path):
    needs_datasets()
    web = _jsonl(
        tmp_path / "c4.jsonl", [{"text": f"document {i}", "url": "u"} for i in range(5)] + [{"text": "", "url": "u"}]
    )
    docs = list(prepare.iter_source([{"format": "hf", "dataset": "json", "data_files": web, "max_documents": 4}]))
    assert docs == [f"document {i}" for i in range(4)]
    cases = {
        "squad": ([SQUAD, SQUAD], "continuation", 2),
        "hellaswag": ([HELLASWAG], "multiple_choice", 4),
        "triviaqa": ([TRIVIAQA], "continuation", 1),
        "lambada": ([{"text": "a b c"}], "greedy", 1),
        "c4": ([{"text": "x" * 50}], "sequence", 1),
    }
    for fmt, (records, kind, n) in cases.items():
        spec = {"format": fmt, "hf": {"dataset": "json", "data_files": _jsonl(tmp_path / f"{fmt}.jsonl", records)}}
        candidates, got_kind = prepare.test_candidates(spec, {}, max_chars=20)
        assert got_kind == kind and len(candidates) == n, fmt
    assert (
        prepare.test_candidates(
            {"format": "c4", "hf": {"dataset": "json", "data_files": str(tmp_path / "c4.jsonl")}}, {}, 20
        )[0][0].continuation
        == "x" * 20
    )
    with pytest.raises(DataError, match=r"c4.jsonl: record has no field 'answer.value'"):
        prepare.test_candidates({"format": "triviaqa", "hf": {"dataset": "json", "data_files": web}}, {}, 20)
    with pytest.raises(DataError, match="missing.jsonl: cannot be read as dataset 'json'"):
        list(prepare.iter_source([{"format": "hf", "dataset": "json", "data_files": str(tmp_path / "missing.jsonl")}]))


def test_without_datasets_installed_the_error_says_what_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(ConfigError, match=r"needs the 'datasets' package: pip install 'proxyscale\[hf\]'"):
        next(hf.load_records({"dataset": "allenai/c4"}))
