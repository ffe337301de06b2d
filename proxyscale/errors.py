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
