"""Pixel-value conventions shared by every minimization op.

Clips are batches `(B, T, H, W, C)` with C in {1, 3}, either uint8 grey levels 0..255 or floats in [0, 1].
Every op returns the input's dtype. Ops that emulate an 8-bit reference implementation (PIL, OpenCV) do so
exactly on uint8 input, in integer arithmetic; on float input they run the same filter without the
intermediate 8-bit rounding. uint8 results of float arithmetic are rounded half up and clipped, the rounding
that fixed-point image libraries use.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

# ITU-R 601 luma in 16-bit fixed point, the weights PIL's RGB -> "L" conversion uses; they sum to 2**16, so
# uint8 and float inputs share one definition of luminance.
LUMA_WEIGHTS_16 = (19595, 38470, 7471)


def check_clips(clips, where: str = "minimize") -> None:
    """Validates a batch of clips at an op boundary.

    Args:
      clips: array of shape `(B, T, H, W, C)`.
      where: name used in the error message (the op or pipeline being applied).

    Raises:
      ValueError: wrong rank, channel count or dtype.
    """
    shape = tuple(clips.shape)
    if len(shape) != 5:
        raise ValueError(f"{where}: clips must have shape (B, T, H, W, C), got shape {shape}; "
                         "add a batch axis with clips[None] for a single clip")
    if shape[-1] not in (1, 3):
        raise ValueError(f"{where}: clips must have 1 or 3 channels (last axis), got {shape[-1]} "
                         f"in shape {shape}")
    dtype = jnp.dtype(clips.dtype)
    if dtype != jnp.uint8 and not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(f"{where}: clips must be uint8 (0..255) or float (0..1), got dtype {dtype}")


def is_uint8(x) -> bool:
    """True when `x` holds 8-bit grey levels (as opposed to floats in [0, 1])."""
    return jnp.dtype(x.dtype) == jnp.uint8


def round_to_uint8(y: jax.Array) -> jax.Array:
    """Rounds half up and clips float grey levels to uint8."""
    return jnp.clip(jnp.floor(y + 0.5), 0, 255).astype(jnp.uint8)


def as_float32(x: jax.Array) -> jax.Array:
    """Float inputs computed in float32 (bfloat16/float16 clips would lose levels in sums)."""
    return x.astype(jnp.float32)


def from_float32(y: jax.Array, dtype) -> jax.Array:
    """Casts a float32 result back to a float input dtype."""
    return y.astype(dtype)


def luminance(clips: jax.Array) -> jax.Array:
    """ITU-R 601 luminance of `(..., C)` pixels, without the channel axis.

    uint8 input gives PIL's `convert("L")` exactly: `(19595 R + 38470 G + 7471 B + 2**15) >> 16` as int32.
    Float input gives the same weighted sum (float32, unrounded). A single channel is its own luminance.

    Args:
      clips: `(..., C)` pixels, C in {1, 3}.

    Returns:
      int32 grey levels for uint8 input, float32 in [0, 1] for float input; shape `clips.shape[:-1]`.
    """
    if clips.shape[-1] == 1:
        y = clips[..., 0]
        return y.astype(jnp.int32) if is_uint8(clips) else as_float32(y)
    wr, wg, wb = LUMA_WEIGHTS_16
    if is_uint8(clips):
        x = clips.astype(jnp.int32)
        return (x[..., 0] * wr + x[..., 1] * wg + x[..., 2] * wb + (1 << 15)) >> 16
    x = as_float32(clips)
    return (x[..., 0] * wr + x[..., 1] * wg + x[..., 2] * wb) * np.float32(1.0 / (1 << 16))


def materialize(x: jax.Array) -> jax.Array:
    """Stops XLA from fusing `x`'s producer into its consumers.

    XLA:CPU fuses a `pad` into the slices that read it, which turns every load into a bounds-checked select
    and stops vectorisation: a padded 9-tap box pass ran 10x slower fused than reading a materialised padded
    copy. The barrier costs one extra pass over (small, uint8) memory.
    """
    return jax.lax.optimization_barrier(x)


def edge_pad(x: jax.Array, axis: int, before: int, after: int, mode: str = "edge",
             value=0) -> jax.Array:
    """Pads one axis (replicated edge or a constant) and materialises the result (see `materialize`)."""
    pad = [(0, 0)] * x.ndim
    pad[axis] = (before, after)
    if mode == "edge":
        return materialize(jnp.pad(x, pad, mode="edge"))
    return materialize(jnp.pad(x, pad, mode="constant", constant_values=value))
