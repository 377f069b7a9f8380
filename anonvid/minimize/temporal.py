"""Temporal sampling (TS): the breadth mechanism, exposing only every s-th frame.

Keeping frames 0, s, 2s, ... of a T-frame clip leaves T' = ceil(T / s) frames. Callers that hold per-frame
labels subsample them with `sample_indices(T, s)` (or a pipeline's `frame_indices(T)`), so labels and frames
stay aligned.
"""
from __future__ import annotations

import jax
import numpy as np


def sample_indices(num_frames: int, stride: int) -> np.ndarray:
    """Indices of the frames kept by temporal sampling.

    Args:
      num_frames: T, frames in the input clip.
      stride: s >= 1, keep every s-th frame starting at frame 0.

    Returns:
      int64 array `[0, s, 2s, ...]` of length ceil(T / s).
    """
    return np.arange(0, num_frames, stride)


def temporal_sample(clips: jax.Array, stride: int) -> jax.Array:
    """Keeps frames 0, s, 2s, ... of every clip.

    Args:
      clips: `(B, T, ...)` clips of any dtype.
      stride: s >= 1.

    Returns:
      `(B, ceil(T / s), ...)` clips.
    """
    return clips[:, ::stride]
