"""The dataset selection methods, each described once: what the config, the rules, Figure 8 and the
report know of a method all come from its entry in :data:`METHODS`.

An entry names its selector in :mod:`proxyscale.selection.methods` (a function of the selection dataset,
the target task, the number of windows to keep, the config keys it reads and, for a method that selects
with a datamodel, the datamodel's path), whether it selects with a datamodel and of which sizes, the
selection config keys it reads besides the selection's size (so its rule's params hold exactly those,
and changing one method's setting re-runs that method alone), and its label and line style.

Adding a method is an entry here and its selector; the schema's ``selection.methods`` enum lists the
same names (a test holds them equal). This module imports nothing heavy: the workflow reads it when it
parses the rules.
"""

from __future__ import annotations

from dataclasses import dataclass

from proxyscale.errors import ConfigError

OPTIONAL_KEYS = ("seed", "ngram_buckets")
"""Selection config keys that only some methods read (:attr:`Method.reads`)."""


@dataclass(frozen=True)
class Method:
    """One selection method (module docstring)."""

    kind: str
    label: str
    description: str  # what it keeps, after its label, in the report's introduction
    selector: str  # its function in proxyscale.selection.methods
    datamodel: str | None  # "every size": one selection per datamodel size; "reference": that size's only
    reads: tuple[str, ...]  # of OPTIONAL_KEYS
    color: str
    linestyle: str | tuple

    def names(self, sizes: list[str], reference: str) -> list[str]:
        """The selections this method makes: ``<kind>-<size>`` per datamodel size it selects with, or ``kind``."""
        if self.datamodel == "every size":
            return [f"{self.kind}-{size}" for size in sizes]
        if self.datamodel == "reference":
            return [f"{self.kind}-{reference}"]
        return [self.kind]

    @property
    def pattern(self) -> str:
        """How its selections are named, for messages."""
        return f"{self.kind}-<size>" if self.datamodel else self.kind


METHODS = {
    m.kind: m
    for m in (
        Method("dsdm", "DsDm", "the examples with the largest mean datamodel weight over the target's examples "
               "(predicted to lower target loss most)", "dsdm_selection", "every size", (), "C0", "-"),
        Method("bot_dsdm", "Bot-DsDm", "the smallest", "bot_dsdm_selection", "reference", (), "C3", (0, (1, 3))),
        Method("dsir", "DSIR", "hashed n-gram importance resampling", "dsir_selection", None,
               ("seed", "ngram_buckets"), "C2", ":"),
        Method("classifier", "Classifier", "a logistic regression target vs pool", "classifier_selection", None,
               ("seed", "ngram_buckets"), "C4", "-."),
        Method("random", "random", "a uniform draw", "random_selection", None, ("seed",), "gray", "--"),
    )
}  # fmt: skip
"""Every selection method, in the order the report describes them."""


def method(kind: str) -> Method:
    """The registered method ``kind``; another name is a config error listing them."""
    if kind not in METHODS:
        raise ConfigError(f"selection: '{kind}' is not a selection method ({', '.join(METHODS)})")
    return METHODS[kind]


def selection_names(kinds: list[str], sizes: list[str], reference: str) -> list[str]:
    """Names of the selections each target gets from the methods ``kinds`` (``selection.methods``), in their
    order: ``dsdm-<size>`` for every size, ``bot_dsdm-<reference>``, then the methods without a datamodel."""
    return [name for kind in kinds for name in method(kind).names(sizes, reference)]


def parse_method(name: str) -> tuple[str, str | None]:
    """(kind, size) of a selection name from :func:`selection_names`; size is None without a datamodel."""
    kind, _, size = name.partition("-")
    if kind not in METHODS or bool(METHODS[kind].datamodel) != bool(size):
        raise ConfigError(f"'{name}' is not a selection ({', '.join(m.pattern for m in METHODS.values())})")
    return kind, size or None


def method_params(kind: str, selection: dict, tokens_per_param: float) -> dict:
    """What a selection of method ``kind`` depends on (its rule's params): the fraction (or, when it is
    null, the reference's size and the tokens per parameter that set the selection's size) and the keys
    of :data:`OPTIONAL_KEYS` the method reads (None for the others)."""
    fixed = selection["fraction"] is None
    return {
        "kind": kind,
        "fraction": selection["fraction"],
        "reference": selection["sizes"][selection["reference"]] if fixed else None,
        "tokens_per_param": tokens_per_param if fixed else None,
        **{key: selection[key] if key in method(kind).reads else None for key in OPTIONAL_KEYS},
    }


def noise_selections(names: list[str], reference: str) -> list[str]:
    """Of the selections ``names``, those retrained with ``selection.noise_seeds`` seeds: random and DsDm with
    the reference size, whose difference is the report's first finding and Figure 8's reference point."""
    return [name for name in names if name in ("random", f"dsdm-{reference}")]


def extra_noise_seeds(selection: dict) -> int:
    """The retraining seeds of the noise selections beyond ``retrain_seeds`` (``noise_seeds`` minus it, or 0):
    their ``selection_retrain_noise`` jobs train these."""
    return max(0, selection["noise_seeds"] - selection["retrain_seeds"])


def noise_runs(targets: list[str], names: list[str], reference: str, extra_seeds: int) -> list[tuple[str, str]]:
    """The (target, selection) runs retrained with seeds beyond ``selection.retrain_seeds`` (``extra_seeds``
    of them; none when 0), in the order the DsDm report's inputs list them."""
    return [(t, m) for t in targets for m in noise_selections(names, reference)] if extra_seeds else []
