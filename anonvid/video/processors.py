"""The three anonymization methods as chunk processors for `transcode`: frames in, same-size frames out.

- `MinimizeProcessor` (method B): a minimization spec (`"ts(5)|blur(4)"`). Temporal sampling is done by the
  stream (frames are dropped as they are decoded); the depth ops run on each chunk as one jitted call.
  Shape-changing ops (`ds(f)`) are undone by block replication, so the output keeps the input's resolution
  while holding only the downsampled information. Region-restricted ops (`faces(blur=4)`, `blur(4)@person`)
  take their masks from a `RegionMasks` source (the detector pass, see `anonvid.video.regions`).
- `PruneProcessor` (method A): a trained dual-token ViT scores the tubelets of clips resized to its input size;
  the kept-pixel mask is upsampled to the full frame and the pruned pixels are filled (black by default).
- `AnonymizerProcessor` (method C): a trained UNet++ f_A applied to every frame, at the native resolution or a
  working size given by the user (then resized back).

Every processor pads the last, shorter chunk to the full chunk length, so each video compiles one program, and
returns a jax array without waiting for it: JAX computes the chunk on its own threads while the stream decodes the
next chunk and encodes the previous one.
"""
from __future__ import annotations

import math
from typing import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from anonvid import minimize
from anonvid.minimize.registry import BREADTH

# frames of a chunk, by method: pixels per chunk are bounded so that 1080p stays well under 2 GB of RAM
MAX_CHUNK_FRAMES = 64
_PIXEL_BUDGET = {"minimize": 12_000_000, "prune": 12_000_000, "anonymizer": 2_100_000}

# `masks_for(indices)`: input frame indices -> {region name: bool (len(indices), H, W)}
RegionMasks = Callable[[np.ndarray], Mapping[str, np.ndarray]]


def auto_chunk_frames(method: str, height: int, width: int, multiple: int = 1) -> int:
    """Frames per chunk for `method` at `height` x `width`: a pixel budget, at least one (or `multiple`)."""
    frames = max(1, min(MAX_CHUNK_FRAMES, _PIXEL_BUDGET[method] // max(1, height * width)))
    return max(multiple, frames // multiple * multiple)


def _pad_frames(frames: np.ndarray, length: int) -> np.ndarray:
    """Repeats the last frame until there are `length` frames (static shapes for jit)."""
    if len(frames) >= length:
        return frames
    return np.concatenate([frames, np.repeat(frames[-1:], length - len(frames), axis=0)])


def _nearest_index(size: int, source: int) -> np.ndarray:
    """Row (or column) of a `source`-sized map that covers each of `size` output rows (nearest upsampling)."""
    return np.minimum((np.arange(size) * source) // size, source - 1)


def split_for_streaming(spec) -> tuple[int, minimize.Pipeline]:
    """Splits a minimization spec into the stream's temporal sampling stride and the per-chunk depth pipeline.

    Returns:
      `(keep_every, depth_pipeline)`: the product of the `ts` strides, and the spec without its `ts` ops.

    Raises:
      ValueError: an op with temporal state (e.g. `bgsub`) comes before temporal sampling; the stream samples
        frames as it decodes them, so the message says to write the sampling first.
    """
    full = minimize.parse(spec) if isinstance(spec, str) else spec
    keep_every, seen_stateful = 1, None
    for call in full.ops:
        if call.op.kind == BREADTH:
            if seen_stateful is not None:
                raise ValueError(f"{full}: {seen_stateful} depends on neighbouring frames, so it must come after "
                                 f"temporal sampling when streaming a video (write `{call}|{seen_stateful}` "
                                 f"instead)")
            keep_every *= int(call.kwargs["stride"])
        elif not call.op.commutes_with_ts:
            seen_stateful = call.name
    return keep_every, minimize.Pipeline(tuple(c for c in full.ops if c.op.kind != BREADTH))


class MinimizeProcessor:
    """Applies a minimization spec to streamed frames (see the module docstring).

    Args:
      spec: minimization spec string or parsed `Pipeline`.
      chunk_frames: frames per jitted call.
      masks_for: region mask source; required when the spec restricts ops to regions.

    Attributes:
      keep_every: the temporal sampling stride the stream must apply (product of the spec's `ts` strides).
      pipeline: the depth part of the spec, run on every chunk.
      context: frames of history prepended to each chunk for ops with temporal state (`bgsub`'s warm-up).
    """

    def __init__(self, spec, *, chunk_frames: int, masks_for: RegionMasks | None = None):
        self.spec = str(minimize.parse(spec) if isinstance(spec, str) else spec)
        self.keep_every, self.pipeline = split_for_streaming(spec)
        self.regions = self.pipeline.regions
        if self.regions and masks_for is None:
            raise ValueError(f"{self.spec} restricts ops to regions {self.regions}; a region detector is needed")
        self.masks_for = masks_for
        self.chunk_frames = int(chunk_frames)
        self.context = max([int(c.kwargs.get("warmup", 0)) for c in self.pipeline.ops
                            if not c.op.commutes_with_ts] + [0])
        self._history: tuple[np.ndarray, np.ndarray] | None = None  # (frames, input indices) of the last chunk
        self.scale = math.prod(int(c.kwargs["factor"]) for c in self.pipeline.ops if c.name == "ds")

    def __call__(self, frames: np.ndarray, first_index: int) -> np.ndarray:
        if self.pipeline.is_identity:
            return frames
        n, h, w, _ = frames.shape
        indices = first_index + self.keep_every * np.arange(n)
        if self.context:
            if self._history is None or self._history[1][-1] + self.keep_every != first_index:
                self._history = (frames[:0], indices[:0])
            past, past_idx = self._history
            x = np.concatenate([past, frames])
            idx = np.concatenate([past_idx, indices])
            self._history = (x[-self.context:], idx[-self.context:])
        else:
            x, idx = frames, indices
        skip = len(x) - n
        length = self.chunk_frames + self.context
        x = _pad_frames(x, length)
        idx = np.concatenate([idx, np.repeat(idx[-1:], length - len(idx))])
        # pad the frame to a multiple of the downsampling factor (edge pixels), crop after
        ph, pw = -h % self.scale, -w % self.scale
        if ph or pw:
            x = np.pad(x, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge")
        masks = None
        if self.regions:
            masks = {name: np.pad(m, ((0, 0), (0, ph), (0, pw)), mode="edge")[None]
                     for name, m in self.masks_for(idx).items()}
        out = self.pipeline.apply(jnp.asarray(x[None]), masks)[0]
        if out.shape[1:3] != x.shape[1:3]:  # ds: replicate blocks back to full size
            out = jnp.take(out, _nearest_index(x.shape[1], out.shape[1]), axis=1)
            out = jnp.take(out, _nearest_index(x.shape[2], out.shape[2]), axis=2)
        return out[skip:skip + n, :h, :w]  # a jax array: the stream encodes the previous chunk meanwhile


def _resize_batch(frames: jax.Array, height: int, width: int) -> jax.Array:
    """Bilinear resize of `(N, H, W, C)` float frames (antialiased when shrinking)."""
    return jax.image.resize(frames, (frames.shape[0], height, width, frames.shape[-1]), "linear", antialias=True)


class PruneProcessor:
    """Tubelet pruning with a trained dual-token ViT, mask upsampled to the full frame.

    Args:
      model: trained `DualViT` (`anonvid.trainers.dual_vit.load_pruner`).
      clips_per_chunk: model clips per jitted call (a chunk is `clips_per_chunk x num_frames` frames).
      fill: "black" (paper), "blur" or "mean" for pruned pixels.
      keep_rates, lambda_priv: overrides of the model's pruning settings.
    """

    def __init__(self, model, *, clips_per_chunk: int = 1, fill: str = "black", keep_rates=None,
                 lambda_priv: float | None = None, blur_sigma: float = 8.0):
        from anonvid import prune_anonymizer, pruning

        if fill not in pruning.FILLS:
            raise ValueError(f"unknown fill {fill!r}; use one of {pruning.FILLS}")
        prune_anonymizer.make_anonymizer(model, keep_rates=keep_rates, lambda_priv=lambda_priv)  # checks options
        cfg = model.config
        self.clip_len = int(cfg.num_frames)
        self.size = tuple(int(s) for s in cfg.image_size)
        self.chunk_frames = self.clip_len * max(1, int(clips_per_chunk))
        self.fill, self.blur_sigma = fill, float(blur_sigma)

        def kept_mask(frames_u8):  # (N, H, W, 3) uint8 at full size -> (N, h, w) kept mask at model size
            x = _resize_batch(frames_u8.astype(jnp.float32) / 255.0, *self.size)
            clips = jnp.clip(x, 0.0, 1.0).reshape((-1, self.clip_len) + x.shape[1:])
            _, aux = prune_anonymizer.prune_clips(model, clips, keep_rates=keep_rates, lambda_priv=lambda_priv)
            return aux["mask"].reshape((-1,) + aux["mask"].shape[2:])

        self._kept_mask = jax.jit(kept_mask)
        self._fill = jax.jit(lambda x, m: pruning.apply_mask(x[None], m[None], fill, blur_sigma=self.blur_sigma)[0])

    def __call__(self, frames: np.ndarray, first_index: int) -> np.ndarray:
        n, h, w, _ = frames.shape
        x = _pad_frames(frames, self.chunk_frames)
        small = self._kept_mask(jnp.asarray(x))
        full = jnp.take(jnp.take(small, _nearest_index(h, small.shape[1]), axis=1),
                        _nearest_index(w, small.shape[2]), axis=2)
        return self._fill(jnp.asarray(x), full)[:n]


class AnonymizerProcessor:
    """A trained UNet++ anonymizer f_A on every frame.

    Args:
      model: exported f_A (`anonvid.trainers.identity.load_anonymizer`).
      chunk_frames: frames per jitted call.
      work_size: optional (height, width) to run f_A at (e.g. its training size); None runs at the frame size.
    """

    def __init__(self, model, *, chunk_frames: int, work_size: tuple[int, int] | None = None):
        self.chunk_frames = int(chunk_frames)
        self.work_size = work_size

        def run(frames_u8):
            x = frames_u8.astype(jnp.float32) / 255.0
            h, w = x.shape[1:3]
            if work_size is not None and tuple(work_size) != (h, w):
                x = _resize_batch(x, *work_size)
            y = model(x)
            if y.shape[1:3] != (h, w):
                y = _resize_batch(y, h, w)
            return jnp.round(jnp.clip(y, 0.0, 1.0) * 255.0).astype(jnp.uint8)

        self._run = jax.jit(run)

    def __call__(self, frames: np.ndarray, first_index: int) -> np.ndarray:
        x = _pad_frames(frames, self.chunk_frames)
        return self._run(jnp.asarray(x))[:len(frames)]
