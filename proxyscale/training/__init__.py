"""Training, shared by every experiment: the optimisation recipe, checkpoints, Chinchilla-budget
language-model training on token streams (``lm``) and epoch training on a fixed set of examples
(``fit``, for the datamodel experiments). The loss they minimise is :mod:`proxyscale.losses`."""
