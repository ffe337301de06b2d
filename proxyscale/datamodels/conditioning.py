"""Whether a projection size suits the number of training examples TRAK features.

TRAK's datamodel is Phi (Phi^T Phi + lambda I)^-1 g: Phi holds one projected gradient of size k per
training example. As k approaches the number of training examples n, Phi^T Phi (rank at most n)
becomes nearly singular and, with ``lambda_reg`` 0, its inverse amplifies noise; at k > n it is
singular. Measured with configs/mnist_logreg.yaml (a linear model, n = 5,000, 500 targets, 10 models,
LDS against 50 retrains on half-size subsets; LDS without / with the Q term): k = 256 0.447 / 0.565,
512 0.434 / 0.535, 1,024 0.358 / 0.433, 2,048 0.231 / 0.276, and at 4,096 Phi^T Phi was singular.
The LDS holds to k = n/10 and has lost a sixth by n/5, so the warning starts above
:data:`MAX_FRACTION` of n (README, "Attribution benchmarks").
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
        f"{key} {proj_dim} is {proj_dim / n_train:.1%} of the {n_train} training examples with lambda_reg 0: "
        "Phi^T Phi is nearly singular and the datamodel's weights grow noisy (on MNIST the LDS lost a sixth at "
        f"k = n/5 and half at 0.4 n); use at most {int(MAX_FRACTION * n_train)} (a fifth of the training examples) "
        "or more training examples"
    )
