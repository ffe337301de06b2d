"""Model families: the GPT/MPT-style decoders of the language experiments (``gpt``) and the
width-scaled image classifiers of the vision attribution setting (``vision``)."""

from torch import nn


def count_params(model: nn.Module) -> int:
    """Number of parameters of a built model (any family)."""
    return sum(p.numel() for p in model.parameters())
