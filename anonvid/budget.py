"""The utility budget penalty of the penalty-driven anonymizer (METHODS.md C).

    pixel:   λ · max(0, RMS(x − f_A(x)) − B)          RMS over the whole batch, pixels in [0, 1]
    feature: λ · max(0, RMS(f_T(x) − f_T(f_A(x))) − B)  the same hinge on the action model's features

The anonymizer may change the action input freely up to the budget B and pays linearly beyond it. Both are
jnp expressions, so the penalty carries gradient to f_A — the reference code turned it into a Python float,
which made B a no-op. At exactly zero excess the hinge's gradient is zero.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

KINDS = ("pixel", "feature")


def rms(a: jax.Array, b: jax.Array) -> jax.Array:
    """Root-mean-square difference over all elements (float32)."""
    d = a.astype(jnp.float32) - b.astype(jnp.float32)
    # sqrt has an infinite derivative at 0: a tiny floor keeps the identity map's gradient finite (0·∞ = NaN)
    return jnp.sqrt(jnp.mean(d * d) + 1e-12)


def hinge(distance: jax.Array, budget: float, weight: float = 1.0) -> jax.Array:
    """`weight · max(0, distance − budget)`."""
    return weight * jax.nn.relu(distance - budget)


def check_budget(budget: float, kind: str = "pixel") -> None:
    """Raises a clear error for a non-positive budget or an unknown penalty kind."""
    if kind not in KINDS:
        raise ValueError(f"penalty kind {kind!r} is not one of {KINDS}")
    if not float(budget) > 0:
        raise ValueError(f"the budget B must be > 0 (the paper sweeps 0.3, 0.5, 0.7, 0.9); got {budget}. "
                         f"B <= 0 would penalise every change, including the identity's rounding")
