"""How much each model of the datamodel experiments trains, and on which examples.

Language models follow the paper's protocol (section 3.2, appendix C.2.4): every model of a size
trains Chinchilla-optimally, on ``tokens_per_param x params`` tokens, i.e. that many windows' worth
of scored positions. Each of the M checkpoints of a size draws its own seeded random subset of that
many windows from the pool, without replacement, and makes one pass over it (Algorithm 2's random
subsets, sized by the budget); the subset of checkpoint ``c`` is a prefix of one seeded permutation
per checkpoint, so a smaller size's subset lies inside a larger size's. A reference retrained on a
given set of windows (an LDS subset, a selection) trains the same budget over them, which repeats
them when the set is smaller than the budget; ``model.max_repetition`` bounds that.

Vision models keep the epoch recipe: ``epochs`` passes over all training examples.

A budget is a dict from the config: ``{"tokens_per_param": t}`` (language) or ``{"epochs": e}``
(vision); :func:`passes` turns it into passes over a given number of examples.
"""

from __future__ import annotations

import math

import numpy as np

from proxyscale.datamodels.tasks import LMTask
from proxyscale.errors import ConfigError
from proxyscale.models.architecture import count_parameters, token_budget


def budget_windows(task: LMTask, size: dict, tokens_per_param: float) -> int:
    """Windows a language model of ``size`` trains on: its Chinchilla tokens over the scored
    positions of a window (``context_length``), rounded up."""
    return math.ceil(token_budget(task.config(size), tokens_per_param) / task.context_length)


def describe_budget(task: LMTask, size: dict, tokens_per_param: float) -> str:
    """'N windows (T tokens = t x P params)', for error messages and reports."""
    params = count_parameters(task.config(size))
    windows = budget_windows(task, size, tokens_per_param)
    return f"{windows:,} windows ({windows * task.context_length:,} tokens = {tokens_per_param:g} x {params:,} params)"


def passes(task, size: dict, n_examples: int, budget: dict, max_repetition: float, where: str) -> float:
    """Passes over ``n_examples`` examples that ``budget`` asks of a model of ``size``. A language
    model's passes are its repetition of the data: more than ``max_repetition`` is a config error
    naming ``where`` (the run), raised before training."""
    if "epochs" in budget:
        return float(budget["epochs"])
    needed = budget_windows(task, size, budget["tokens_per_param"])
    repetition = needed / n_examples
    if repetition > max_repetition:
        raise ConfigError(
            f"{where}: the budget of {describe_budget(task, size, budget['tokens_per_param'])} would repeat its "
            f"{n_examples:,} windows {repetition:.1f} times, more than model.max_repetition = {max_repetition:g}"
        )
    return repetition


def checkpoint_examples(
    task, size: dict, n_train: int, budget: dict, seed: int, model_id: int, pool_key: str
) -> np.ndarray:
    """Sorted indices of the training examples model ``model_id`` of ``size`` trains on: all of them
    (vision), or a random subset of the size's budget in windows (language), drawn by a permutation
    seeded by (``seed``, ``model_id``). A budget larger than the pool is a config error naming ``pool_key``."""
    if "epochs" in budget:
        return np.arange(n_train)
    needed = budget_windows(task, size, budget["tokens_per_param"])
    if needed > n_train:
        raise ConfigError(
            f"{pool_key}: {n_train:,} windows are fewer than the "
            f"{describe_budget(task, size, budget['tokens_per_param'])} a checkpoint of this size trains on; "
            "raise it or use a smaller size"
        )
    return np.sort(np.random.default_rng([seed, model_id]).permutation(n_train)[:needed])
