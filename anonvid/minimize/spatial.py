"""Per-pixel and per-block spatial ops that keep the frame shape: gray, black, mask, quant, pixelate.

All of them act on each frame independently, so they commute with temporal sampling.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from anonvid.minimize import pixels


def _replicate_channels(plane: jax.Array, channels: int) -> jax.Array:
    """`(..., H, W)` -> `(..., H, W, C)` by copying the plane into every channel."""
    return jnp.broadcast_to(plane[..., None], plane.shape + (channels,))


def gray(clips: jax.Array) -> jax.Array:
    """ITU-R 601 luminance replicated to every channel (PIL `convert("L")` on uint8 input).

    Args:
      clips: `(..., H, W, C)` uint8 or float pixels; a single channel is returned unchanged.

    Returns:
      Same shape and dtype.
    """
    if clips.shape[-1] == 1:
        return clips
    lum = pixels.luminance(clips)
    lum = lum.astype(jnp.uint8) if pixels.is_uint8(clips) else pixels.from_float32(lum, clips.dtype)
    # Materialise the plane first: broadcasting inside the luminance fusion recomputes it per channel with
    # channel-strided loads, which XLA:CPU does not vectorise.
    return _replicate_channels(pixels.materialize(lum), clips.shape[-1])


def black(clips: jax.Array) -> jax.Array:
    """Every pixel set to 0, same shape and dtype (restricted to a region it blacks out faces: `black@face`)."""
    return jnp.zeros_like(clips)


def threshold_mask(clips: jax.Array, threshold: float) -> jax.Array:
    """Global binary threshold on luminance: a silhouette-like image, not person masking.

    A pixel is on when its luminance exceeds `threshold / 255` (uint8: luminance > threshold, with PIL's
    integer luminance).

    Args:
      clips: `(..., H, W, C)` uint8 or float pixels.
      threshold: threshold in grey levels, 0..255 (the paper uses 25).

    Returns:
      Same shape and dtype: 255 (uint8) or 1.0 (float) where on, 0 elsewhere, identical in every channel.
    """
    if pixels.is_uint8(clips):
        # Integer luminance L > t  <=>  L > floor(t): an integer comparison, in uint8 for one channel (no
        # widening of the frames at all).
        t = int(np.floor(threshold))
        lum = clips[..., 0] if clips.shape[-1] == 1 else pixels.luminance(clips)
        on = lum > jnp.asarray(t, lum.dtype)
    else:
        on = pixels.luminance(clips) > np.float32(threshold / 255.0)
    if pixels.is_uint8(clips):
        plane = on.astype(jnp.uint8) * jnp.uint8(255)
    else:
        plane = on.astype(clips.dtype)
    if clips.shape[-1] == 1:
        return plane[..., None]
    return _replicate_channels(pixels.materialize(plane), clips.shape[-1])


def quantize(clips: jax.Array, bits: int) -> jax.Array:
    """Uniform colour quantisation to `2**bits` levels per channel spanning the full range.

    Level `q = round(v * (2**bits - 1))` for v in [0, 1], reconstructed as `q / (2**bits - 1)`, so black and
    white are kept, 1 bit is a threshold at mid-grey and 8 bits is the identity on uint8 input. (Unlike PIL's
    `posterize`, which keeps the top bits and maps white to 255 - 2**(8 - bits) + 1.)

    Args:
      clips: `(..., H, W, C)` uint8 or float pixels.
      bits: bits per channel, 1..8.

    Returns:
      Same shape and dtype.
    """
    top = (1 << bits) - 1
    if pixels.is_uint8(clips):
        x = clips.astype(jnp.int32)
        # floor(x * top / 255 + 1/2) in integers; x * top * 2 is even and 255 * odd is odd, so no ties.
        level = (2 * top * x + 255) // 510
        # round(level * 255 / top), half up.
        return ((2 * 255 * level + top) // (2 * top)).astype(jnp.uint8)
    x = pixels.as_float32(clips)
    level = jnp.floor(x * top + 0.5)
    return pixels.from_float32(jnp.clip(level, 0, top) / np.float32(top), clips.dtype)


def pixelate(clips: jax.Array, block: int) -> jax.Array:
    """Replaces every `block` x `block` tile by its mean (shape preserving, nearest-neighbour upsampling).

    Tiles start at the top-left corner; when H or W is not a multiple of `block`, the last row/column of
    tiles is smaller and averages only the pixels it covers.

    Args:
      clips: `(..., H, W, C)` uint8 or float pixels.
      block: tile side in pixels, >= 1.

    Returns:
      Same shape and dtype (uint8 means rounded half up).
    """
    if block == 1:
        return clips
    *lead, height, width, channels = clips.shape
    hb, wb = -(-height // block), -(-width // block)
    acc = jnp.int32 if pixels.is_uint8(clips) else jnp.float32
    x = clips.astype(acc)
    x = jnp.pad(x, [(0, 0)] * len(lead) + [(0, hb * block - height), (0, wb * block - width), (0, 0)])
    tiles = x.reshape(*lead, hb, block, wb, block, channels).sum(axis=(-4, -2))
    # Pixels per tile (edge tiles may be partial); static, so it is a constant of the compiled program.
    rows = np.minimum(block, height - block * np.arange(hb))
    cols = np.minimum(block, width - block * np.arange(wb))
    count = (rows[:, None] * cols[None, :])[..., None]
    if pixels.is_uint8(clips):
        means = ((tiles + jnp.asarray(count // 2, jnp.int32)) // jnp.asarray(count, jnp.int32)).astype(jnp.uint8)
    else:
        means = pixels.from_float32(tiles / jnp.asarray(count, jnp.float32), clips.dtype)
    up = jnp.repeat(jnp.repeat(means, block, axis=-3), block, axis=-2)
    return up[..., :height, :width, :]
