"""Spatial downsampling by an integer factor: area averaging (OpenCV INTER_AREA) and PIL bicubic.

Area: every output pixel is the mean of an f x f block (H and W must be divisible by f). uint8 means are
rounded half up, which is what OpenCV's integer-factor INTER_AREA path computes for f = 2 (`(sum + 2) >> 2`);
for other factors OpenCV rounds ties to even, so the two can differ by one grey level on exact ties.

Bicubic: PIL's `Image.resize((W // f, H // f), Image.BICUBIC)`. PIL antialiases when it downscales: the
Keys cubic (a = -0.5, support 2) is stretched by the scale f, so each output pixel averages about 4f input
pixels per axis; windows are truncated at the border and renormalised. It resamples rows first, then columns,
rounding to 8 bits in between with 22-bit fixed-point coefficients. On uint8 input that arithmetic is
reproduced exactly (an int32 matrix product per axis); on float input the same coefficients are applied in
float32 without rounding, and the result is clipped to [0, 1] (the cubic overshoots at edges).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from anonvid.minimize import pixels

# PIL's fixed-point precision for 8-bit resampling: 32 bits minus 8 for the pixel, minus 2 for overshoot.
PRECISION_BITS = 22


def check_divisible(height: int, width: int, factor: int, where: str) -> None:
    """Raises a ValueError unless both frame sides are divisible by `factor`."""
    bad = [f"{name} {size}" for name, size in (("height", height), ("width", width)) if size % factor]
    if bad:
        verb = "is" if len(bad) == 1 else "are"
        raise ValueError(f"{where}: {' and '.join(bad)} {verb} not divisible by the downsampling factor {factor}; "
                         f"crop or pad frames to a multiple of {factor}, or choose a factor that divides "
                         f"{height}x{width}")


def area_downsample(clips: jax.Array, factor: int) -> jax.Array:
    """Means of non-overlapping `factor` x `factor` blocks (OpenCV INTER_AREA for integer factors).

    Args:
      clips: `(..., H, W, C)` uint8 or float pixels with H and W divisible by `factor`.
      factor: integer downsampling factor >= 1.

    Returns:
      `(..., H // factor, W // factor, C)` pixels, input dtype (uint8 rounded half up).

    Raises:
      ValueError: H or W not divisible by `factor`.
    """
    height, width = clips.shape[-3], clips.shape[-2]
    check_divisible(height, width, factor, f"ds({factor})")
    if factor == 1:
        return clips
    if pixels.is_uint8(clips):
        # uint16 holds a block sum of 255 * f^2 for f <= 16 and halves memory traffic against int32.
        acc = jnp.uint16 if factor <= 16 else jnp.int32
    else:
        acc = jnp.float32
    # Strided slices rather than reshape + mean: XLA:CPU vectorises the slice sum ~10x better.
    rows = sum(clips[..., i::factor, :, :].astype(acc) for i in range(factor))
    total = sum(rows[..., j::factor, :] for j in range(factor))
    area = factor * factor
    if pixels.is_uint8(clips):
        return ((total + area // 2) // area).astype(jnp.uint8)
    return pixels.from_float32(total * np.float32(1.0 / area), clips.dtype)


def _cubic(x: np.ndarray, a: float = -0.5) -> np.ndarray:
    """Keys cubic convolution kernel (support 2)."""
    x = np.abs(x)
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    far = (((x - 5.0) * x + 8.0) * x - 4.0) * a
    return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))


@functools.lru_cache(maxsize=64)
def bicubic_matrix(in_size: int, out_size: int) -> np.ndarray:
    """Resampling matrix `(in_size, out_size)` of PIL's antialiased bicubic filter (float64, columns sum to 1).

    Follows PIL's coefficient construction: output pixel `xx` is centred at `(xx + 0.5) * scale`; the kernel
    is stretched by `max(scale, 1)`; the window is truncated at the borders and renormalised.
    """
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 2.0 * filterscale
    m = np.zeros((in_size, out_size))
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        # int() truncates toward zero like C's cast; both bounds are rounded, then clamped to the image.
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), in_size)
        taps = np.arange(lo, hi)
        w = _cubic((taps - center + 0.5) / filterscale)
        if w.sum() != 0.0:
            w = w / w.sum()
        m[lo:hi, xx] = w
    return m


def _fixed_point(m: np.ndarray) -> np.ndarray:
    """PIL's rounding of coefficients to PRECISION_BITS (half away from zero)."""
    scaled = m * (1 << PRECISION_BITS)
    return np.where(scaled < 0, np.trunc(scaled - 0.5), np.trunc(scaled + 0.5)).astype(np.int32)


def _resample_axis_uint8(x: jax.Array, axis: int, out_size: int) -> jax.Array:
    k = jnp.asarray(_fixed_point(bicubic_matrix(x.shape[axis], out_size)))
    x = jnp.moveaxis(x, axis, -1).astype(jnp.int32)
    # Exact int32 accumulation: |sum| <= 255 * sum|k| < 2**31 for PIL's coefficients.
    ss = jnp.einsum("...i,io->...o", x, k, preferred_element_type=jnp.int32)
    y = jnp.clip((ss + (1 << (PRECISION_BITS - 1))) >> PRECISION_BITS, 0, 255).astype(jnp.uint8)
    return jnp.moveaxis(y, -1, axis)


def _resample_axis_float(x: jax.Array, axis: int, out_size: int) -> jax.Array:
    k = jnp.asarray(bicubic_matrix(x.shape[axis], out_size), jnp.float32)
    y = jnp.einsum("...i,io->...o", jnp.moveaxis(x, axis, -1), k, precision=jax.lax.Precision.HIGHEST)
    return jnp.moveaxis(y, -1, axis)


def bicubic_downsample(clips: jax.Array, factor: int) -> jax.Array:
    """PIL-compatible antialiased bicubic downsampling by an integer factor.

    Args:
      clips: `(..., H, W, C)` uint8 or float pixels with H and W divisible by `factor`.
      factor: integer downsampling factor >= 1.

    Returns:
      `(..., H // factor, W // factor, C)` pixels, input dtype; uint8 equals
      `Image.resize((W // factor, H // factor), Image.BICUBIC)` per frame.

    Raises:
      ValueError: H or W not divisible by `factor`.
    """
    height, width = clips.shape[-3], clips.shape[-2]
    check_divisible(height, width, factor, f"ds({factor},bicubic)")
    if factor == 1:
        return clips
    h_axis, w_axis = clips.ndim - 3, clips.ndim - 2
    if pixels.is_uint8(clips):
        y = _resample_axis_uint8(clips, w_axis, width // factor)  # PIL: horizontal pass first
        return _resample_axis_uint8(y, h_axis, height // factor)
    y = _resample_axis_float(pixels.as_float32(clips), w_axis, width // factor)
    y = _resample_axis_float(y, h_axis, height // factor)
    return pixels.from_float32(jnp.clip(y, 0.0, 1.0), clips.dtype)
