"""Whether a projection size suits the number of training examples TRAK features.

TRAK's datamodel is Phi (Phi^T Phi + lambda I)^-1 g: Phi holds one projected gradient of size k per
training example. As k approaches the number of training examples n, Phi^T Phi (rank at most n)
becomes nearly singular and, with ``lambda_reg`` 0, its inverse amplifies noise; at k > n it is
singular. Measured with a linear MNIST model (5,000 training and 500 target images, 10 models, LDS
against 50 retrains on half-size subsets), the LDS held up to k = n/10 and fell at k = 0.4 n and
beyond (see the README's "Projection size" section for the table); the warning starts between the
two, at :data:`MAX_FRACTION` of n.
"""

from __future__ import annotations

from proxyscale.errors import ConfigError

MAX_FRACTION = 0.2
"""Largest projection size, as a share of the training examples, that needs no regularisation."""


def check_projection(proj_dim: int, n_train: int, lambda_reg: float, key: str, n_key: str) -> None:
    """A projection larger than the training set with no regularisation is a config error naming ``key``."""
    if lambda_reg == 0 and proj_dim > n_train:
        raise ConfigError(
            f"{key}: {proj_dim} exceeds the {n_train} training examples ({n_key}), so Phi^T Phi is singular "
            f"with lambda_reg 0; use at most {int(MAX_FRACTION * n_train)} (a fifth of them), more training "
            "examples, or a positive lambda_reg"
        )


def projection_warning(proj_dim: int, n_train: int, lambda_reg: float, key: str) -> str | None:
    """What to tell the user when ``proj_dim`` is a large share of ``n_train`` and nothing regularises;
    None when the projection size is safe."""
    if lambda_reg > 0 or proj_dim <= MAX_FRACTION * n_train:
        return None
    return (
        f"{key} {proj_dim} is {proj_dim / n_train:.0%} of the {n_train} training examples with lambda_reg 0: "
        "Phi^T Phi is nearly singular and the datamodel's weights are mostly noise (measured LDS falls from "
        f"k = n/10 on); use at most {int(MAX_FRACTION * n_train)} (a fifth of the training examples) or more "
        "training examples"
    )
