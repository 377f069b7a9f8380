"""Clip augmentation that is identical for every frame of a clip (pure jnp, jittable, vmapped over clips).

The recipe of METHODS.md A's training: random resized crop (area scale 0.6–1, aspect ratio 3/4–4/3, resized
back to the input size), horizontal flip, mild colour jitter (brightness, contrast, saturation) and random
erasing. One set of random parameters is drawn per clip and applied to all its frames, so augmentation never
creates motion that is not in the video (the action is in the motion).
"""
from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

_LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, as PIL's "L" conversion


@dataclasses.dataclass(frozen=True)
class ClipAugment:
    """Augmentation settings (hashable: static under jit).

    Attributes:
      crop_scale: (min, max) fraction of the frame area kept by the random resized crop; (1, 1) disables it.
      crop_ratio: (min, max) aspect ratio (width / height) of the crop, sampled log-uniformly.
      flip: random horizontal flip with probability 1/2.
      jitter: strength j of the colour jitter: brightness, contrast and saturation factors in [1 − j, 1 + j].
      erase_prob: probability of random erasing (one rectangle filled with uniform noise).
      erase_area: (min, max) fraction of the frame area erased.
      grey_prob: probability of converting the clip to greyscale (SimCLR's views use 0.2).
    """

    crop_scale: tuple[float, float] = (0.6, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: bool = True
    jitter: float = 0.1
    erase_prob: float = 0.25
    erase_area: tuple[float, float] = (0.02, 0.2)
    grey_prob: float = 0.0

    def __post_init__(self):
        lo, hi = self.crop_scale
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"crop_scale must satisfy 0 < min <= max <= 1; got {self.crop_scale}")
        if not 0 < self.crop_ratio[0] <= self.crop_ratio[1]:
            raise ValueError(f"crop_ratio must satisfy 0 < min <= max; got {self.crop_ratio}")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"jitter must be in [0, 1); got {self.jitter}")
        if not 0 <= self.erase_prob <= 1:
            raise ValueError(f"erase_prob must be in [0, 1]; got {self.erase_prob}")
        if not 0 < self.erase_area[0] <= self.erase_area[1] < 1:
            raise ValueError(f"erase_area must satisfy 0 < min <= max < 1; got {self.erase_area}")
        if not 0 <= self.grey_prob <= 1:
            raise ValueError(f"grey_prob must be in [0, 1]; got {self.grey_prob}")

    @classmethod
    def from_config(cls, cfg) -> ClipAugment:
        """From a mapping with any of the fields (lists become tuples); unknown keys raise."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(cfg) - fields)
        if unknown:
            raise ValueError(f"unknown augmentation field(s) {unknown}; known: {sorted(fields)}")
        return cls(**{k: tuple(v) if isinstance(v, (list, tuple)) else v for k, v in dict(cfg).items()})


def _resized_crop(key: jax.Array, clip: jax.Array, aug: ClipAugment) -> jax.Array:
    t, h, w, c = clip.shape
    k_area, k_ratio, k_y, k_x = jax.random.split(key, 4)
    area = jax.random.uniform(k_area, (), minval=aug.crop_scale[0], maxval=aug.crop_scale[1])
    log_r = jax.random.uniform(k_ratio, (), minval=math.log(aug.crop_ratio[0]), maxval=math.log(aug.crop_ratio[1]))
    ratio = jnp.exp(log_r)
    ch = jnp.clip(jnp.sqrt(area / ratio) * h, 1.0, h)
    cw = jnp.clip(jnp.sqrt(area * ratio) * w, 1.0, w)
    y0 = jax.random.uniform(k_y, ()) * (h - ch)
    x0 = jax.random.uniform(k_x, ()) * (w - cw)
    scale = jnp.stack([h / ch, w / cw])
    # scale_and_translate maps input coordinate u to u·scale + translation: the crop's corner goes to 0.
    return jax.image.scale_and_translate(clip, clip.shape, (1, 2), scale, -jnp.stack([y0, x0]) * scale,
                                         method="linear", antialias=False)


def _colour_jitter(key: jax.Array, clip: jax.Array, strength: float) -> jax.Array:
    kb, kc, ks = jax.random.split(key, 3)

    def factor(k):
        return jax.random.uniform(k, (), minval=1.0 - strength, maxval=1.0 + strength)

    luma = jnp.asarray(_LUMA, clip.dtype)
    x = clip * factor(kb)
    mean = jnp.mean(x @ luma)
    x = (x - mean) * factor(kc) + mean
    grey = (x @ luma)[..., None]
    return jnp.clip(grey + (x - grey) * factor(ks), 0.0, 1.0)


def _erase(key: jax.Array, clip: jax.Array, aug: ClipAugment) -> jax.Array:
    t, h, w, c = clip.shape
    k_on, k_area, k_ratio, k_y, k_x, k_fill = jax.random.split(key, 6)
    area = jax.random.uniform(k_area, (), minval=aug.erase_area[0], maxval=aug.erase_area[1]) * h * w
    ratio = jnp.exp(jax.random.uniform(k_ratio, (), minval=math.log(0.3), maxval=math.log(1 / 0.3)))
    eh = jnp.clip(jnp.sqrt(area / ratio), 1.0, h)
    ew = jnp.clip(jnp.sqrt(area * ratio), 1.0, w)
    y0 = jax.random.uniform(k_y, ()) * (h - eh)
    x0 = jax.random.uniform(k_x, ()) * (w - ew)
    ys = jnp.arange(h, dtype=jnp.float32)[:, None]
    xs = jnp.arange(w, dtype=jnp.float32)[None, :]
    box = (ys >= y0) & (ys < y0 + eh) & (xs >= x0) & (xs < x0 + ew)
    box = box & jax.random.bernoulli(k_on, aug.erase_prob)
    noise = jax.random.uniform(k_fill, (h, w, c), clip.dtype)  # the same noise in every frame
    return jnp.where(box[None, :, :, None], noise[None], clip)


def _augment_one(key: jax.Array, clip: jax.Array, aug: ClipAugment) -> jax.Array:
    k_crop, k_flip, k_jit, k_erase = jax.random.split(key, 4)
    k_grey = jax.random.fold_in(key, 4)  # a separate stream: the other draws stay as they were before grey_prob
    if aug.crop_scale != (1.0, 1.0) or aug.crop_ratio != (1.0, 1.0):
        clip = _resized_crop(k_crop, clip, aug)
    if aug.flip:
        clip = jnp.where(jax.random.bernoulli(k_flip), clip[:, :, ::-1], clip)
    if aug.jitter > 0:
        clip = _colour_jitter(k_jit, clip, aug.jitter)
    if aug.grey_prob > 0:
        grey = (clip @ jnp.asarray(_LUMA, clip.dtype))[..., None]
        clip = jnp.where(jax.random.bernoulli(k_grey, aug.grey_prob), jnp.broadcast_to(grey, clip.shape), clip)
    if aug.erase_prob > 0:
        clip = _erase(k_erase, clip, aug)
    return jnp.clip(clip, 0.0, 1.0)


def augment_clips(key: jax.Array, clips: jax.Array, aug: ClipAugment = ClipAugment()) -> jax.Array:
    """Augments a batch of clips, one random draw per clip shared by all its frames.

    Args:
      key: PRNG key.
      clips: float `(B, T, H, W, C)` in [0, 1].
      aug: the settings.

    Returns:
      float32 clips of the same shape in [0, 1].
    """
    if clips.ndim != 5:
        raise ValueError(f"augment_clips expects clips (B, T, H, W, C); got shape {clips.shape}")
    if not jnp.issubdtype(clips.dtype, jnp.floating):
        raise ValueError(f"augment_clips expects float clips in [0, 1]; got {clips.dtype} (divide uint8 by 255)")
    keys = jax.random.split(key, clips.shape[0])
    return jax.vmap(lambda k, x: _augment_one(k, x, aug))(keys, clips.astype(jnp.float32))
