"""Background removal (BR): per-clip running-Gaussian background subtraction plus morphological cleanup.

Model (per pixel and channel, in grey levels 0..255 whatever the input dtype):
  1. Initialise mean and variance from the first `min(warmup, T)` frames of the clip (the paper warms the
     model up on the 20 preceding frames; a clip is the unit here, so it warms up on its own first frames).
  2. For every frame t = 0..T-1 in order (`lax.scan`): foreground where `|x - mu| > k * sigma` in any channel,
     sigma = max(std, min_std); then update only *background* pixels: `mu += alpha (x - mu)`,
     `var += alpha ((x - mu)^2 - var)`. Selective update is the choice made here: a person who stops moving
     is not absorbed into the background within the clip (with a blind update at rate alpha, a still person
     fades out after ~1/alpha frames). Foreground pixels keep their model frozen.
  3. Clean the binary mask with a 3x3 opening then a 3x3 closing (as OpenCV `morphologyEx` MORPH_OPEN then
     MORPH_CLOSE with a 3x3 rectangle; pixels outside the frame never change a min or max).
  4. Output x where foreground, 0 elsewhere.

Frames of the warm-up window are classified too (against the model they helped build). Because the model is
built from the frames it is given, background removal does not commute with temporal sampling: removing the
background of every 5th frame (ts first) sees a different model than removing it from all frames and then
sampling (bgsub first).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from anonvid.minimize import pixels


def _erode_or_dilate(mask: jax.Array, erode: bool) -> jax.Array:
    """3x3 min (erode) or max (dilate) of a uint8 0/1 mask `(..., H, W)`, separable rows then columns.

    Padding with 1 for erosion and 0 for dilation makes pixels outside the frame neutral, which is OpenCV's
    default border for morphology (+inf for erode, -inf for dilate).
    """
    reduce = jnp.minimum if erode else jnp.maximum
    pad_value = 1 if erode else 0
    y = mask
    for axis in (mask.ndim - 1, mask.ndim - 2):
        n = y.shape[axis]
        yp = pixels.edge_pad(y, axis, 1, 1, mode="constant", value=pad_value)
        taps = [jax.lax.slice_in_dim(yp, o, o + n, axis=axis) for o in range(3)]
        y = reduce(reduce(taps[0], taps[1]), taps[2])
    return y


def open_close(mask: jax.Array) -> jax.Array:
    """3x3 morphological opening followed by a 3x3 closing of binary masks.

    Equals `cv2.morphologyEx(cv2.morphologyEx(m, MORPH_OPEN, k), MORPH_CLOSE, k)` with
    `k = np.ones((3, 3), np.uint8)` and OpenCV's default border.

    Args:
      mask: `(..., H, W)` boolean (or 0/1) masks.

    Returns:
      Boolean masks of the same shape.
    """
    m = mask.astype(jnp.uint8)
    m = _erode_or_dilate(_erode_or_dilate(m, erode=True), erode=False)   # open: remove specks
    m = _erode_or_dilate(_erode_or_dilate(m, erode=False), erode=True)   # close: fill pinholes
    return m.astype(bool)


# Warm-up windows up to this many frames are summed unrolled (one fused loop, quick to compile); longer ones
# with a scan.
_MAX_UNROLLED_WARMUP = 32


def _frame_mean_var(frames: jax.Array, scale: np.float32) -> tuple[jax.Array, jax.Array]:
    """Per-pixel mean and (population) variance over the leading axis, in float32 grey levels.

    Accumulates the sum and sum of squares of `x - x_0` (shifting by the first frame keeps the
    `E[y^2] - E[y]^2` cancellation small; for uint8 input every partial sum is an exact integer in float32
    up to 258 frames). `jnp.mean`/`jnp.var` over axis 0 of a float32 copy was ~100x slower on XLA:CPU for
    16 x 8 x 256^2 frames.
    """
    ref = frames[0].astype(jnp.float32) * scale

    def add(acc, frame):
        s1, s2 = acc
        y = frame.astype(jnp.float32) * scale - ref
        return (s1 + y, s2 + y * y)

    zeros = jnp.zeros(frames.shape[1:], jnp.float32)
    if frames.shape[0] <= _MAX_UNROLLED_WARMUP:
        acc = (zeros, zeros)
        for t in range(frames.shape[0]):
            acc = add(acc, frames[t])
        s1, s2 = acc
    else:
        (s1, s2), _ = jax.lax.scan(lambda acc, frame: (add(acc, frame), None), (zeros, zeros), frames)
    n = np.float32(frames.shape[0])
    shift = s1 / n
    return ref + shift, jnp.maximum(s2 / n - shift * shift, 0.0)


def foreground_masks(clips: jax.Array, *, warmup: int = 20, alpha: float = 0.05, k: float = 2.5,
                     min_std: float = 6.0) -> jax.Array:
    """Raw (uncleaned) foreground masks of a running-Gaussian background model.

    Args:
      clips: `(B, T, H, W, C)` uint8 or float pixels.
      warmup: frames used to initialise the model (the first min(warmup, T)).
      alpha: learning rate of the background update.
      k: foreground threshold in standard deviations.
      min_std: floor of the standard deviation, in grey levels (keeps a static background from flagging
        sensor noise or compression as foreground).

    Returns:
      `(B, T, H, W)` boolean foreground masks.
    """
    scale = np.float32(1.0 if pixels.is_uint8(clips) else 255.0)
    # Scan over time in the input dtype and convert frame by frame: a float32 copy of the whole batch is
    # 4x the memory traffic (and, past 32 MiB, a fresh page-faulting allocation per call on CPU).
    frames = jnp.moveaxis(clips, 1, 0)                                      # (T, B, H, W, C)
    n0 = min(warmup, frames.shape[0])
    mean0, var0 = _frame_mean_var(frames[:n0], scale)
    min_var = np.float32(min_std * min_std)
    k2 = np.float32(k * k)
    a = np.float32(alpha)

    def step(state, frame):
        mean, var = state
        d = frame.astype(jnp.float32) * scale - mean
        # |d| > k sigma  <=>  d^2 > k^2 max(var, min_std^2): no square root per pixel.
        fg = jnp.any(jnp.square(d) > k2 * jnp.maximum(var, min_var), axis=-1)
        bg = (~fg)[..., None]
        mean = jnp.where(bg, mean + a * d, mean)
        var = jnp.where(bg, var + a * (jnp.square(d) - var), var)
        return (mean, var), fg

    _, fg = jax.lax.scan(step, (mean0, var0), frames)
    return jnp.moveaxis(fg, 0, 1)


def remove_background(clips: jax.Array, *, warmup: int = 20, alpha: float = 0.05, k: float = 2.5,
                      min_std: float = 6.0) -> jax.Array:
    """Zeroes the background of every clip (see the module docstring for the model).

    Args:
      clips: `(B, T, H, W, C)` uint8 or float pixels.
      warmup, alpha, k, min_std: background model parameters (see `foreground_masks`).

    Returns:
      Same shape and dtype: input pixels where foreground, 0 elsewhere.
    """
    fg = open_close(foreground_masks(clips, warmup=warmup, alpha=alpha, k=k, min_std=min_std))
    return jnp.where(fg[..., None], clips, jnp.zeros((), clips.dtype))
