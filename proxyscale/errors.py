"""Exceptions that carry a message meant for the person running the workflow.

Library code raises these for bad configuration or bad input instead of letting a deep traceback
escape; the workflow entry points print the message and exit non-zero.
"""


class ProxyscaleError(Exception):
    """Base class: the message alone says what is wrong and where."""


class ConfigError(ProxyscaleError):
    """The configuration is inconsistent (names the offending key)."""


class DataError(ProxyscaleError):
    """An input file is missing or not in the format its config entry declares."""


class TrainingError(ProxyscaleError):
    """Training cannot go on: the loss diverged (names the run, the step and the learning rate)."""


def reason(exc: Exception) -> str:
    """An exception from a library in one short line for a message: its type and the first sentence
    of its first line (library messages run to paragraphs; the first sentence says what happened)."""
    text = str(exc).splitlines()[0].split(". ")[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__
