"""Model families: the GPT/MPT-style decoders of the language experiments (``architecture``, ``gpt``),
checkpoints trained elsewhere (``imported``) and the width-scaled image classifiers of the vision
attribution setting (``vision``)."""


def built_parameters(model) -> int:
    """Number of parameters of a built model (any family; a GPT's closed form is
    :func:`proxyscale.models.architecture.count_parameters`)."""
    return sum(p.numel() for p in model.parameters())
