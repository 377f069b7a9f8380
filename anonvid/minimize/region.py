"""Region-restricted application: run a shape-preserving op only inside a caller-supplied mask.

`blur(4)@person` blurs the pixels where `masks["person"]` is True and leaves every other pixel exactly as it
was. Only shape-preserving ops can be restricted (the spec parser rejects `ts(5)@person` and `ds(2)@person`).
Masks are given at the pipeline's input resolution and length; when a pipeline changes the clip shape before
a restricted op (`ts(5)|ds(2)|blur(4)@face`), the masks follow the same frame sampling and are downsampled by
"any pixel of the block is inside", so the region never shrinks (the conservative choice for privacy).
"""
from __future__ import annotations

from typing import Callable, Mapping

import jax
import jax.numpy as jnp


def check_masks(masks: Mapping[str, jax.Array] | None, clips_shape: tuple[int, ...],
                needed: tuple[str, ...]) -> dict[str, jax.Array]:
    """Validates the masks a pipeline needs and returns them as boolean arrays.

    Args:
      masks: name -> `(B, T, H, W)` boolean array (None if none were given).
      clips_shape: `(B, T, H, W, C)` of the pipeline's input.
      needed: region names used by the pipeline's ops.

    Returns:
      The needed masks, cast to bool.

    Raises:
      ValueError: a needed mask is missing or has the wrong shape.
    """
    masks = dict(masks or {})
    out = {}
    for name in needed:
        if name not in masks:
            given = ", ".join(sorted(masks)) or "none"
            raise ValueError(f"the spec restricts an op to region {name!r} but no mask named {name!r} was "
                             f"passed (masks given: {given}); call apply(clips, masks={{{name!r}: "
                             f"bool array (B, T, H, W)}})")
        mask = masks[name]
        if tuple(mask.shape) != tuple(clips_shape[:4]):
            raise ValueError(f"mask {name!r} has shape {tuple(mask.shape)}, expected (B, T, H, W) = "
                             f"{tuple(clips_shape[:4])} to match the clips")
        out[name] = jnp.asarray(mask).astype(bool)
    return out


def apply_in_region(fn: Callable[[jax.Array], jax.Array], clips: jax.Array, mask: jax.Array) -> jax.Array:
    """`fn(clips)` inside `mask`, `clips` outside.

    Args:
      fn: a shape-preserving op on `(B, T, H, W, C)` clips.
      clips: input clips.
      mask: `(B, T, H, W)` boolean region.

    Returns:
      Clips of the input shape and dtype.
    """
    out = fn(clips)
    return jnp.where(mask[..., None], out, clips)


def downsample_mask(mask: jax.Array, factor: int) -> jax.Array:
    """`(B, T, H, W)` -> `(B, T, H / f, W / f)`: a block is inside if any of its pixels is."""
    if factor == 1:
        return mask
    b, t, h, w = mask.shape
    return jnp.any(mask.reshape(b, t, h // factor, factor, w // factor, factor), axis=(3, 5))
