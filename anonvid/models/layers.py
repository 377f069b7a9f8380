"""Layer factories that attach *logical* sharding axes to parameters.

Every parameter in anonvid carries logical axis names (`embed`, `mlp`, `heads`, `conv_in`, `conv_out`, ...);
`anonvid.sharding` maps them to mesh axes through one rules table in the config. Models call these factories
instead of constructing `nnx.Conv`/`nnx.Linear`/`nnx.BatchNorm` directly, so the naming is in one place.
"""
from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from anonvid.models import fast_conv

# Kaiming-normal (fan-out) for convolutions, as torchvision's ResNet does: keeps activations O(1) with ReLU.
_CONV_INIT = nnx.initializers.variance_scaling(2.0, "fan_out", "normal")


def conv(in_features: int, out_features: int, kernel_size: Sequence[int], *, strides: Sequence[int] | int = 1,
         padding="SAME", use_bias: bool = False, dtype=jnp.float32, param_dtype=jnp.float32,
         rngs: nnx.Rngs) -> nnx.Conv:
    """A 2-D or 3-D convolution (channels-last) with kernel axes (*spatial, conv_in, conv_out)."""
    spatial = (None,) * len(kernel_size)
    return nnx.Conv(
        in_features, out_features, tuple(kernel_size), strides=strides, padding=padding, use_bias=use_bias,
        dtype=dtype, param_dtype=param_dtype,
        kernel_init=nnx.with_partitioning(_CONV_INIT, spatial + ("conv_in", "conv_out")),
        bias_init=nnx.with_partitioning(nnx.initializers.zeros_init(), ("conv_out",)),
        conv_general_dilated=fast_conv.conv_general_dilated, rngs=rngs)


def dense(in_features: int, out_features: int, *, axes: tuple[str | None, str | None] = ("embed", "mlp"),
          use_bias: bool = True, kernel_init=None, dtype=jnp.float32, param_dtype=jnp.float32,
          rngs: nnx.Rngs) -> nnx.Linear:
    """A linear layer whose kernel has logical axes `axes` and whose bias follows the output axis."""
    init = kernel_init or nnx.initializers.lecun_normal()
    return nnx.Linear(
        in_features, out_features, use_bias=use_bias, dtype=dtype, param_dtype=param_dtype,
        kernel_init=nnx.with_partitioning(init, axes),
        bias_init=nnx.with_partitioning(nnx.initializers.zeros_init(), (axes[1],)),
        rngs=rngs)


def batch_norm(num_features: int, *, zero_init: bool = False, dtype=jnp.float32, param_dtype=jnp.float32,
               rngs: nnx.Rngs) -> nnx.BatchNorm:
    """BatchNorm over the channel axis; `zero_init` zeroes the scale (last BN of a residual branch)."""
    scale_init = nnx.initializers.zeros_init() if zero_init else nnx.initializers.ones_init()
    return nnx.BatchNorm(
        num_features, momentum=0.9, epsilon=1e-5, dtype=dtype, param_dtype=param_dtype,
        scale_init=nnx.with_partitioning(scale_init, ("conv_out",)),
        bias_init=nnx.with_partitioning(nnx.initializers.zeros_init(), ("conv_out",)),
        rngs=rngs)


def layer_norm(num_features: int, *, axis_name: str | None = "embed", epsilon: float = 1e-6, dtype=jnp.float32,
               param_dtype=jnp.float32, rngs: nnx.Rngs) -> nnx.LayerNorm:
    """LayerNorm over the last axis with scale and offset on logical axis `axis_name` (ViT: eps 1e-6)."""
    return nnx.LayerNorm(
        num_features, epsilon=epsilon, dtype=dtype, param_dtype=param_dtype,
        scale_init=nnx.with_partitioning(nnx.initializers.ones_init(), (axis_name,)),
        bias_init=nnx.with_partitioning(nnx.initializers.zeros_init(), (axis_name,)),
        rngs=rngs)


def param(init, shape: Sequence[int], axes: Sequence[str | None], *, param_dtype=jnp.float32,
          rngs: nnx.Rngs) -> nnx.Param:
    """A free parameter (embedding table, learned token) of `shape` with logical axes `axes`."""
    if len(axes) != len(shape):
        raise ValueError(f"logical axes {tuple(axes)} do not match parameter shape {tuple(shape)}")
    return nnx.Param(init(rngs.params(), tuple(shape), param_dtype), out_sharding=tuple(axes))


@jax.custom_vjp
def gradient_reversal(x: jax.Array, coeff: jax.Array) -> jax.Array:
    """Gradient-reversal layer (Ganin & Lempitsky, DANN): the identity forward, −coeff × the gradient backward.

    `coeff` may be a traced scalar (the DANN ramp); it receives no gradient.
    """
    return x


def _grl_fwd(x, coeff):
    return x, coeff


def _grl_bwd(coeff, g):
    return (-jnp.asarray(coeff, g.dtype) * g, jnp.zeros_like(coeff))


gradient_reversal.defvjp(_grl_fwd, _grl_bwd)
