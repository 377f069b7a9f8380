"""The detector pass of face/person-aware minimization on a video file.

Before anything is anonymized, the file is decoded once and every region's detector runs on its frames (or every
k-th frame); the boxes are smoothed over the whole video (tracks linked, gaps interpolated, held, dilated: see
`anonvid.regions.smoothing`), so chunk borders never show in the masks. Only boxes are kept (a few numbers per
frame), so memory stays bounded for any length. The anonymizing pass then asks for the masks of each chunk.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from anonvid.data.video_io import iter_frames
from anonvid.video.probe import VideoInfo


def detect_video_regions(info: VideoInfo, regions: Sequence[str], *, every: int = 1, shape: str = "ellipse",
                         smoothing: Mapping | None = None, progress: bool = False, **detector_options):
    """Runs the region detectors over `info.path` and returns `masks_for(indices) -> {region: (n, H, W) bool}`.

    Args:
      info: the probed video.
      regions: region names the spec uses (`face`, `person`).
      every: detect on every k-th frame only (smoothing fills the frames between; needs k - 1 <= max_gap).
      shape: "ellipse" or "box" masks.
      smoothing: keyword overrides of `smooth_tracks` (max_gap, hold, dilate, iou, distance).
      progress: show a progress bar for the pass.
      **detector_options: options of the default detectors (e.g. `max_side`).

    Raises:
      ImportError: OpenCV is missing (the message says `pip install 'anonvid[faces]'`).
    """
    from tqdm.auto import tqdm

    from anonvid import regions as R

    detectors = R.build_detectors(regions, **detector_options)
    frames = tqdm(iter_frames(info.path), total=info.frames or None, unit="frame", leave=False,
                  desc=f"detecting {'/'.join(regions)}", disable=not progress)
    raw = R.detect_regions(frames, detectors, every=every)
    smoothed = {name: R.smooth_tracks(boxes, frame_size=(info.height, info.width), **dict(smoothing or {}))
                for name, boxes in raw.items()}

    def masks_for(indices: np.ndarray) -> dict[str, np.ndarray]:
        out = {}
        for name, per_frame in smoothed.items():
            last = len(per_frame) - 1
            out[name] = np.stack([R.boxes_to_mask(per_frame[min(int(i), last)], info.height, info.width, shape)
                                  for i in indices])
        return out

    masks_for.boxes = smoothed  # the smoothed tracks, for inspection and tests
    return masks_for
