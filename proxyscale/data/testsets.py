"""Downstream test sets as lists of scored candidates.

Every test example becomes one or more *candidates* ``(example_id, choice, is_gold, context,
continuation)``; a model's per-sample loss is its mean next-token loss on the gold candidate's
continuation given its context. The ``kind`` of a test set says how it is scored:

- ``sequence`` (C4, the Pile-like mix): the whole text is the continuation of an empty context.
- ``continuation`` (SQuAD answer, TriviaQA answer): loss on the answer only.
- ``greedy`` (LAMBADA): loss on the last word; accuracy = greedy decoding reproduces the word.
- ``multiple_choice`` (HellaSwag): loss on the gold ending; accuracy = the gold ending has the lowest
  length-normalised loss among the choices.

Every candidate also names its *passage*, the text it is about (a SQuAD paragraph, a LAMBADA passage,
a document; for the other sets the example itself), so that examples can be split into parts that
share no passage (:func:`split_by_passage`): the dataset-selection experiment selects with one part
and judges with the other, and the correlation experiment leaves the selecting part out.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from proxyscale.data.files import open_text
from proxyscale.data.readers import iter_jsonl, read_jsonl_text
from proxyscale.errors import ConfigError, DataError

KINDS = ("sequence", "continuation", "greedy", "multiple_choice")


@dataclass(frozen=True)
class Candidate:
    """One scored string: ``continuation`` is what the loss is measured on; ``passage`` the text the
    example is about (empty: the example's own context and gold continuation)."""

    example_id: int
    context: str
    continuation: str
    choice: int = 0
    is_gold: bool = True
    passage: str = ""


def passage_key(text: str) -> int:
    """A stable 63-bit id of a passage's text (the same in every process and run)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big") >> 1


def split_by_passage(
    gold: pd.DataFrame, n_first: int, n_second: int, seed: int, keys: tuple[str, str], where: str, more: str = ""
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted row indices of two disjoint parts of ``gold`` (one row per example, with a ``passage``
    column) of ``n_first`` and ``n_second`` examples that share no passage.

    Passages are taken in a seeded random order, all of a passage's examples together; the first part
    is the first ``n_first`` examples in that order, the second the next ``n_second`` from passages
    after the last one the first part touches. Too few examples is a config error naming the config
    ``keys`` of the two sizes, ``where`` (which test set) and how many examples fit: the passage the
    first part ends in is lost to the second, so the parts can hold fewer than ``len(gold)`` together;
    ``more`` says what else gives more examples."""
    passages = gold["passage"].to_numpy()
    unique, which = np.unique(passages, return_inverse=True)
    rank = np.random.default_rng(seed).permutation(len(unique))[which]
    rows = np.lexsort((np.arange(len(gold)), rank))
    first = rows[:n_first]
    later = rows[n_first:]
    fits = later[rank[later] > rank[first[-1]]] if len(first) else later
    if len(first) < n_first or len(fits) < n_second:
        held = f"{len(gold)} examples in {len(unique)} passages"
        if len(first) < n_first:
            fix = f"lower {keys[0]} below {len(gold)}"
        else:
            fix = (
                f"after {keys[0]} = {n_first}, the passages it does not touch hold {len(fits)} examples; "
                f"lower {keys[1]} to {len(fits)}"
            )
        raise ConfigError(
            f"{keys[0]} + {keys[1]} = {n_first} + {n_second} for {where} do not fit in its {held}: the two parts "
            f"share no passage, so {fix}{more}"
        )
    return np.sort(first), np.sort(fits[:n_second])


def sequence_candidates(docs: list[str], max_chars: int) -> list[Candidate]:
    """Whole-text examples (start of each document, cut at ``max_chars``)."""
    return [Candidate(i, "", doc[:max_chars], passage=doc) for i, doc in enumerate(docs)]


def squad_candidates(path: str | Path, **text) -> list[Candidate]:
    """SQuAD v1.1 JSON: ``Context/Question/Answer:`` prompt, first gold answer as continuation."""
    with open_text(path, **text) as f:
        try:
            articles = json.load(f)["data"]
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
        except (KeyError, TypeError):
            raise DataError(f"{path}: not a SQuAD JSON file (expected an object with 'data')") from None
    out = []
    for number, article in enumerate(articles):
        try:
            for para in article["paragraphs"]:
                for qa in para["qas"]:
                    if not qa.get("answers"):
                        continue
                    prompt = f"{para['context'].strip()}\nQuestion: {qa['question'].strip()}\nAnswer:"
                    answer = " " + qa["answers"][0]["text"].strip()
                    out.append(Candidate(len(out), prompt, answer, passage=para["context"].strip()))
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise DataError(
                f"{path}: article {number} lacks SQuAD's fields (paragraphs[].context, qas[].question, "
                f"answers[].text): {type(exc).__name__} {exc}"
            ) from None
    return out


def lambada_candidates(path: str | Path, **text) -> list[Candidate]:
    """LAMBADA JSON lines: the target is the passage's last (space-separated) word."""
    out = []
    for passage in read_jsonl_text(path, **text):
        passage = passage.strip()
        head, sep, last = passage.rpartition(" ")
        if sep:
            out.append(Candidate(len(out), head, " " + last, passage=passage))
    return out


def hellaswag_candidates(path: str | Path, **text) -> list[Candidate]:
    """HellaSwag in 6-line items: ``activity: context``, gold index (0-3), then the 4 endings."""
    with open_text(path, **text) as f:
        lines = [line.rstrip("\r\n") for line in f]
    while lines and not lines[-1].strip():
        lines.pop()
    if len(lines) % 6:
        raise DataError(f"{path}: {len(lines)} lines is not a multiple of 6 (context, label, 4 endings)")
    out = []
    for item, i in enumerate(range(0, len(lines), 6)):
        context, label = lines[i], lines[i + 1].strip()
        if label not in {"0", "1", "2", "3"}:
            raise DataError(f"{path}:{i + 2}: gold label '{label}' is not one of 0-3")
        for choice, ending in enumerate(lines[i + 2 : i + 6]):
            out.append(Candidate(item, context, " " + ending.strip(), choice, choice == int(label), passage=context))
    return out


def canonical_alias(aliases: list[str]) -> str:
    """The alias most other aliases contain (case-insensitive); on ties the shortest, then not all capitals.

    TriviaQA lists an answer's aliases in no useful order ("Park Grove (1895)" before "York"); the
    canonical answer is the one that the variants are built around ("York, England", "YORK", ...).
    """
    folded = [a.casefold() for a in aliases]
    return max(aliases, key=lambda a: (sum(a.casefold() in f for f in folded), -len(a), not a.isupper()))


def triviaqa_candidates(path: str | Path, **text) -> list[Candidate]:
    """TriviaQA JSON lines: question at ``turns[0]``, answer aliases at ``answer``."""
    out = []
    for i, row in enumerate(iter_jsonl(path, **text), 1):
        try:
            question, aliases = row["turns"][0], row["answer"]
        except (KeyError, IndexError, TypeError):
            raise DataError(f"{path}: record {i} lacks 'turns[0]' or 'answer'") from None
        if not isinstance(question, str) or not isinstance(aliases, list):
            raise DataError(f"{path}: record {i}: 'turns[0]' must be text and 'answer' a list of aliases")
        if aliases:
            out.append(Candidate(len(out), f"Question: {question.strip()}\nAnswer:", " " + canonical_alias(aliases)))
    return out


def subsample(candidates: list[Candidate], max_examples: int, seed: int) -> list[Candidate]:
    """A seeded random subset of whole examples (all choices of a kept example are kept), renumbered."""
    ids = sorted({c.example_id for c in candidates})
    if len(ids) > max_examples:
        ids = sorted(random.Random(seed).sample(ids, max_examples))
    new_id = {old: new for new, old in enumerate(ids)}
    return [
        Candidate(new_id[c.example_id], c.context, c.continuation, c.choice, c.is_gold, c.passage)
        for c in candidates
        if c.example_id in new_id
    ]


FILE_BUILDERS = {
    "squad": (squad_candidates, "continuation"),
    "lambada": (lambada_candidates, "greedy"),
    "hellaswag": (hellaswag_candidates, "multiple_choice"),
    "triviaqa": (triviaqa_candidates, "continuation"),
}
"""Test-set formats read from one file, with the kind each is scored as (C4 and the Pile-like mix
are ``sequence`` sets built from documents); each builder takes the path and :func:`open_text`'s options."""
