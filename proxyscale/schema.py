"""The config's JSON-schema check, with every failure said in one line.

Snakemake's ``snakemake.utils.validate`` raises jsonschema's error, whose text prints the whole schema and
the whole config (a thousand lines and more for one mistyped key). :func:`validate_config` checks the same
schema with the same validator (JSON Schema 2020-12) and fills the schema's defaults in the same way (each
``properties`` entry's ``default`` set where the key is missing, as the check reaches it), but raises
:class:`ConfigError` with one line: the dotted config key at fault, what is wrong with it and what the
schema allows there (with the nearest valid name where an unknown key or value looks like a typo).
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Iterable
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

from proxyscale.errors import ConfigError

MAX_LISTED = 30
"""Names an "allowed" list shows before it says how many more there are: enough for every top-level key (a
typo there is the commonest and its list the longest), few enough that no list runs to many lines."""
_TYPES = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}
_BOUNDS = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}
_BRANCHES = ("oneOf", "anyOf")


def _fill_defaults(validator, properties, instance, schema):
    """``properties`` that first sets each missing key's ``default`` (a copy), as Snakemake's validate does."""
    if isinstance(instance, dict):
        for name, subschema in properties.items():
            if "default" in subschema:
                instance.setdefault(name, copy.deepcopy(subschema["default"]))
    yield from Draft202012Validator.VALIDATORS["properties"](validator, properties, instance, schema)


_Validator = validators.extend(Draft202012Validator, {"properties": _fill_defaults})


def validate_config(config: dict, schema_path: str | Path) -> None:
    """Check ``config`` against the schema at ``schema_path`` and fill in its defaults, in place.

    Raises :class:`ConfigError` with one line for the most relevant failure (the shallowest key; within
    ``oneOf``/``anyOf``, the deepest error of the alternatives)."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    errors = list(_Validator(schema).iter_errors(config))
    if errors:
        raise ConfigError(describe(_innermost(max(errors, key=_rank))))


def _rank(error: ValidationError) -> tuple:
    """Errors nearer the config's top first (more is wrong there), a oneOf or anyOf after its siblings;
    among equals, ``max`` keeps the first the check met (the schema's order)."""
    return -len(error.absolute_path), error.validator not in _BRANCHES


def _innermost(error: ValidationError) -> ValidationError:
    """Within a oneOf or anyOf, the alternatives' error that reaches deepest into the config, if any reaches
    below the key itself (a mapping alternative's own mistake); otherwise the oneOf or anyOf error."""
    depth = len(error.absolute_path)
    deeper = [e for e in error.context or () if len(e.absolute_path) > depth]
    if error.validator not in _BRANCHES or not deeper:
        return error
    return _innermost(max(deeper, key=lambda e: (len(e.absolute_path), _rank(e))))


def describe(error: ValidationError) -> str:
    """One line: ``<dotted.path>: <what is wrong; what the schema allows>``, as the other config errors begin."""
    path, value, kind, expected = list(error.absolute_path), error.instance, error.validator, error.validator_value
    schema = error.schema if isinstance(error.schema, dict) else {}
    if "propertyNames" in error.absolute_schema_path:  # the failing name is the value; its path is the parent's
        return _line([*path, value], f"not a valid name ({_allows(schema) or error.message})")
    if kind == "additionalProperties":
        allowed, patterns = list(schema.get("properties", {})), schema.get("patternProperties", {})
        unknown = [k for k in value if k not in allowed and not any(re.search(p, k) for p in patterns)]
        return _line([*path, unknown[0]], f"not a known key{_guess(unknown[0], allowed)} (allowed: {_listed(allowed)})")
    if kind == "required":
        missing = [k for k in expected if k not in value]
        keys = ", ".join(f"'{k}'" for k in missing)
        return _line(path, f"missing required key{'s' if len(missing) > 1 else ''} {keys}")
    if kind == "type":
        return _line(path, f"{_show(value)} is not {_alternatives(expected)}")
    if kind in _BOUNDS:
        return _line(path, f"{_show(value)} is out of range (must be {_range(schema)})")
    if kind == "enum":
        return _line(path, f"{_show(value)} must be one of {_listed(expected)}{_guess(value, expected)}")
    if kind == "const":
        return _line(path, f"{_show(value)} must be {_show(expected)}")
    if kind in _BRANCHES and not error.context:
        return _line(path, f"{_show(value)} fits more than one of: {' / '.join(map(_allows, expected))}")
    if kind in _BRANCHES:
        choices = [c for b in expected for c in (b.get("enum") or [b.get("const")]) if isinstance(c, str)]
        return _line(path, f"{_show(value)} must be {' or '.join(map(_allows, expected))}{_guess(value, choices)}")
    if kind in ("minProperties", "minItems"):
        what = ("entry", "entries") if kind == "minProperties" else ("item", "items")
        return _line(path, f"needs at least {expected} {what[expected != 1]} (has {len(value)})")
    if kind == "uniqueItems":
        repeated = next(v for i, v in enumerate(value) if v in value[:i])
        return _line(path, f"lists {_show(repeated)} more than once")
    if kind == "pattern":
        return _line(path, f"{_show(value)} does not match {expected}")
    return _line(path, error.message.splitlines()[0][:200])


def _line(path: Iterable, problem: str) -> str:
    dotted = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    return f"{dotted}: {problem}" if dotted else problem


def _show(value) -> str:
    """A config value as YAML spells the scalars (null, true), else as Python does, cut to 60 characters."""
    text = "null" if value is None else str(value).lower() if isinstance(value, bool) else repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _listed(names) -> str:
    names = [str(n) for n in names]
    more = len(names) - MAX_LISTED
    return ", ".join(names[:MAX_LISTED]) + (f", ... ({more} more)" if more > 0 else "")


def _guess(word, candidates) -> str:
    """``; did you mean 'x'?`` for the candidate nearest a likely typo, else nothing."""
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, [str(c) for c in candidates], n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def _alternatives(types) -> str:
    return " or ".join(_TYPES.get(t, t) for t in ([types] if isinstance(types, str) else types))


def _range(schema: dict) -> str:
    return " and ".join(f"{op} {schema[k]}" for k, op in _BOUNDS.items() if k in schema)


def _allows(schema: dict) -> str:
    """What a simple schema accepts, in words (``an integer >= 1``, ``'auto'``, ``matching ^...$``)."""
    parts = []
    if "type" in schema:
        parts.append(_alternatives(schema["type"]))
    if "const" in schema:
        parts.append(_show(schema["const"]))
    if "enum" in schema:
        parts.append(f"one of {_listed(schema['enum'])}")
    if any(k in schema for k in _BOUNDS):
        parts.append(_range(schema))
    if "pattern" in schema:
        parts.append(f"matching {schema['pattern']}")
    return " ".join(parts)
