"""In-memory convenience: region masks for a batch of clips, and `apply_with_detection` for a whole spec."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from anonvid.regions import smoothing
from anonvid.regions.detect import build_detectors, detect_regions
from anonvid.regions.detectors import Detector
from anonvid.regions.masks import masks_for_range


def as_rgb_uint8(clips) -> np.ndarray:
    """`(B, T, H, W, C)` uint8 or float-in-[0, 1] clips, C in {1, 3} -> uint8 RGB numpy clips (detector input).

    Raises:
      ValueError: wrong rank, channel count or dtype.
    """
    x = np.asarray(clips)
    if x.ndim != 5 or x.shape[-1] not in (1, 3):
        raise ValueError(f"clips must have shape (B, T, H, W, C) with C in {{1, 3}}, got shape {x.shape}; add a "
                         "batch axis with clips[None] for a single clip")
    if np.issubdtype(x.dtype, np.floating):
        x = np.clip(np.floor(x.astype(np.float32) * 255 + 0.5), 0, 255).astype(np.uint8)
    elif x.dtype != np.uint8:
        raise ValueError(f"clips must be uint8 (0..255) or float (0..1), got dtype {x.dtype}")
    return np.repeat(x, 3, axis=-1) if x.shape[-1] == 1 else x


def region_masks(clips, regions: Sequence[str] = ("face",), *, detectors: Mapping[str, Detector] | None = None,
                 shape: str = "ellipse", max_gap: int = smoothing.DEFAULT_MAX_GAP,
                 hold: int = smoothing.DEFAULT_HOLD, dilate: float = smoothing.DEFAULT_DILATE,
                 iou: float = smoothing.DEFAULT_IOU, distance: float = smoothing.DEFAULT_DISTANCE,
                 every: int = 1, **detector_options) -> dict[str, np.ndarray]:
    """Detects, smooths and paints region masks for in-memory clips (each clip is its own video).

    Args:
      clips: `(B, T, H, W, C)` uint8 or float-in-[0, 1] clips, C in {1, 3}.
      regions: region names, "face" and/or "person" (or any name given in `detectors`).
      detectors: region name -> detector overriding the defaults (`detectors.REGION_DETECTORS`).
      shape: mask shape per box, "ellipse" or "box" (see `masks.boxes_to_mask`).
      max_gap, hold, dilate, iou, distance: temporal smoothing (see `smoothing.smooth_tracks`).
      every: detect on every `every`-th frame only, smoothing fills the rest (see `detect.detect_regions`).
      **detector_options: options for the default detectors (e.g. `max_side=480`).

    Returns:
      Region name -> bool `(B, T, H, W)` mask, ready for `Pipeline.apply(clips, masks=...)`.
    """
    x = as_rgb_uint8(clips)
    b, t, h, w, _ = x.shape
    found = build_detectors(tuple(regions), detectors, **detector_options)
    out = {name: np.zeros((b, t, h, w), bool) for name in found}
    for i in range(b):
        raw = detect_regions(x[i], found, every=every)
        for name, per_frame in raw.items():
            smooth = smoothing.smooth_tracks(per_frame, max_gap=max_gap, hold=hold, dilate=dilate, iou=iou,
                                             distance=distance, frame_size=(h, w))
            out[name][i] = masks_for_range(smooth, 0, t, h, w, shape)
    return out


def apply_with_detection(spec, clips, *, masks: Mapping[str, np.ndarray] | None = None, **options):
    """Parses `spec`, detects the regions it needs (`faces(...)`, `op@face`, `op@person`) and applies it.

    Args:
      spec: a minimization spec string or a parsed `Pipeline` (e.g. `"ts(2)|faces(blur=4)"`).
      clips: `(B, T, H, W, C)` uint8 or float clips.
      masks: region masks you already have (`(B, T, H, W)` bool); they are used instead of detecting.
      **options: passed to `region_masks` (smoothing, mask shape, detectors, detector options).

    Returns:
      The minimized clips, as `Pipeline.apply` returns them.
    """
    from anonvid import minimize  # regions sits beside minimize; import late to keep `regions` light

    pipeline = minimize.parse(spec)
    given = dict(masks or {})
    missing = tuple(r for r in pipeline.regions if r not in given)
    if missing:
        given.update(region_masks(clips, missing, **options))
    return pipeline.apply(clips, masks=given or None)
