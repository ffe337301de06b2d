"""Training, shared by every experiment: the optimisation recipe, the one next-token loss, checkpoints,
Chinchilla-budget language-model training on token streams (``lm``) and epoch training on a fixed set
of examples (``fit``, for the datamodel experiments)."""
