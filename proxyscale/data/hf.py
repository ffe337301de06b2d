"""Hugging Face ``datasets`` loaders: the paper's full corpora and test sets by dataset name.

A source entry ``{format: hf, dataset, config?, split?, field?, max_documents?, data_files?}`` reads
documents (one per record, from ``field``, default ``text``): for example ``allenai/c4`` (``en``),
the Pile (``monology/pile-uncopyrighted``) or a RedPajama subset
(``togethercomputer/RedPajama-Data-1T-Sample``). A test set entry with an ``hf`` block instead of a
``path`` reads records in the schema of the dataset the format names:

- ``c4``: ``text`` (allenai/c4, en, validation)
- ``squad``: ``context``, ``question``, ``answers.text`` (rajpurkar/squad, validation)
- ``lambada``: ``text`` (EleutherAI/lambada_openai, default, test)
- ``hellaswag``: ``activity_label``, ``ctx``, ``endings``, ``label`` (Rowan/hellaswag, validation)
- ``triviaqa``: ``question``, ``answer.value`` (mandarjoshi/trivia_qa, rc.nocontext, validation)

Records become the same candidates as the file readers of :mod:`proxyscale.data.testsets` build, so
a model is scored alike whichever way a test set arrives. ``dataset: json`` (or ``parquet``) with
``data_files`` reads local files in those schemas, which is how the tests exercise this module.
Datasets are streamed by default, so ``max_documents`` / ``max_records`` bound what is read.
"""

from __future__ import annotations

import lzma
import zlib
from collections.abc import Iterable, Iterator
from itertools import islice

from proxyscale.data.testsets import Candidate
from proxyscale.errors import ConfigError, DataError, reason

READ_ERRORS = (OSError, ValueError, EOFError, zlib.error, lzma.LZMAError)
"""What reading a dataset's files raises: no network or no file (OSError), unparsable records (pyarrow's
ArrowInvalid is a ValueError), cut-off or corrupt compressed files (EOFError and the decompressors')."""


def load_records(spec: dict, limit: int | None = None) -> Iterator[dict]:
    """Records of ``spec`` = ``{dataset, config?, split?, data_files?, streaming?}``, at most ``limit``,
    as they stream in. A dataset that cannot be reached (no network, not in the cache) or read is one
    :class:`DataError` naming it and how to provide it locally."""
    try:
        import datasets
    except ImportError:
        raise ConfigError(
            f"dataset '{spec['dataset']}' needs the 'datasets' package: pip install 'proxyscale[hf]'"
        ) from None
    try:
        ds = datasets.load_dataset(
            spec["dataset"],
            spec.get("config"),
            split=spec.get("split", "train"),
            data_files=spec.get("data_files"),
            streaming=spec.get("streaming", True),
        )
        yield from islice(iter(ds), limit)
    except (*READ_ERRORS, datasets.exceptions.DatasetsError) as exc:
        raise DataError(_unreachable(spec, exc)) from None


def describe(spec: dict) -> str:
    """How messages name a dataset entry: its name and configuration, or the local files it reads."""
    if spec.get("data_files"):
        files = spec["data_files"]
        return ", ".join(files) if isinstance(files, list) else str(files)
    return f"dataset '{spec['dataset']}'" + (f" ({spec['config']})" if spec.get("config") else "")


def _unreachable(spec: dict, exc: Exception) -> str:
    what = describe(spec)
    if isinstance(exc, EOFError):
        why = "compressed data ends early: a file is cut off"
    else:
        why = reason(exc)
    if spec.get("data_files"):
        return f"{what}: cannot be read as dataset '{spec['dataset']}' ({why})"
    return (
        f"{what}: cannot be loaded ({why}); without network, download it where there is one and point "
        "HF_DATASETS_CACHE at that cache, or save its records as JSON lines or parquet and set "
        "dataset: json (or parquet) with data_files: <files> in this entry"
    )


def _field(record: dict, path: str, where: str):
    value = record
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            raise DataError(f"{where}: record has no field '{path}' (fields: {', '.join(record)})")
        value = value[key]
    return value


def iter_documents(entry: dict) -> Iterator[str]:
    """Non-empty text documents of a ``format: hf`` source entry, as they stream in."""
    field = entry.get("field", "text")
    count = 0
    for record in load_records(entry, entry.get("max_documents")):
        text = _field(record, field, describe(entry))
        if text:
            count += 1
            yield text
    if not count:
        raise DataError(f"{describe(entry)}: no documents in field '{field}'")


def _answer_candidates(records: Iterable[dict], prompt, answer, passage=lambda r: "") -> list[Candidate]:
    """One candidate per record with an answer: ``prompt(record)`` then `` answer``, about ``passage(record)``."""
    out = []
    for r in records:
        text = answer(r)
        if text:
            out.append(Candidate(len(out), prompt(r), " " + text.strip(), passage=passage(r)))
    return out


def squad_candidates(records: Iterable[dict], where: str = "squad") -> list[Candidate]:
    return _answer_candidates(
        records,
        lambda r: f"{_field(r, 'context', where).strip()}\nQuestion: {_field(r, 'question', where).strip()}\nAnswer:",
        lambda r: next(iter(_field(r, "answers.text", where)), None),
        lambda r: _field(r, "context", where).strip(),
    )


def lambada_candidates(records: Iterable[dict], where: str = "lambada") -> list[Candidate]:
    out = []
    for r in records:
        text = _field(r, "text", where).strip()
        head, sep, last = text.rpartition(" ")
        if sep:
            out.append(Candidate(len(out), head, " " + last, passage=text))
    return out


def hellaswag_candidates(records: Iterable[dict], where: str = "hellaswag") -> list[Candidate]:
    out = []
    for item, r in enumerate(records):
        label = str(_field(r, "label", where)).strip()
        endings = _field(r, "endings", where)
        if label not in {"0", "1", "2", "3"} or len(endings) != 4:
            raise DataError(f"{where}: record {item} needs 4 endings and a gold label 0-3 (label '{label}')")
        context = f"{_field(r, 'activity_label', where)}: {_field(r, 'ctx', where)}"
        out += [
            Candidate(item, context, " " + e.strip(), c, c == int(label), passage=context)
            for c, e in enumerate(endings)
        ]
    return out


def triviaqa_candidates(records: Iterable[dict], where: str = "triviaqa") -> list[Candidate]:
    return _answer_candidates(
        records,
        lambda r: f"Question: {_field(r, 'question', where).strip()}\nAnswer:",
        lambda r: _field(r, "answer.value", where),
    )


RECORD_BUILDERS = {
    "squad": (squad_candidates, "continuation"),
    "lambada": (lambada_candidates, "greedy"),
    "hellaswag": (hellaswag_candidates, "multiple_choice"),
    "triviaqa": (triviaqa_candidates, "continuation"),
}
