"""First pass over a video: run the region detectors on every frame.

For a long video, stream its frames once through `detect_regions`, smooth each region's boxes over the whole
video with `smooth_tracks`, then build masks chunk by chunk with `masks_for_range`::

    detectors = build_detectors(pipeline.regions)              # {"face": HaarFaceDetector(...)}
    raw = detect_regions(decoded_frames, detectors)           # {"face": [boxes of frame 0, 1, ...]}
    smooth = {r: smooth_tracks(b, frame_size=(h, w)) for r, b in raw.items()}
    for start, chunk in chunks:                               # chunk: (T_c, H, W, 3)
        masks = {r: masks_for_range(s, start, len(chunk), h, w)[None] for r, s in smooth.items()}
        out = pipeline.apply(chunk[None], masks=masks)
"""
from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import numpy as np

from anonvid.regions.detectors import REGION_DETECTORS, Detector, check_frame, get_detector


def build_detectors(regions: Sequence[str], detectors: Mapping[str, Detector] | None = None,
                    **options) -> dict[str, Detector]:
    """One detector per region name: the caller's, else the default of `REGION_DETECTORS`.

    Args:
      regions: region names, e.g. `pipeline.regions` (`("face",)`).
      detectors: region name -> detector object (anything with `detect(frame)`), overriding the defaults.
      **options: keyword options for every default detector built here (e.g. `max_side=480`).

    Raises:
      ValueError: a region has no default detector and none was given.
    """
    given = dict(detectors or {})
    out = {}
    for name in regions:
        if name in given:
            out[name] = given[name]
        elif name in REGION_DETECTORS:
            out[name] = get_detector(REGION_DETECTORS[name], **options)
        else:
            raise ValueError(f"no detector for region {name!r}; regions with a built-in detector: "
                             f"{', '.join(REGION_DETECTORS)}; pass detectors={{{name!r}: obj}} with an object "
                             f"that has detect(frame) -> (n, 4) boxes, or pass the mask yourself with "
                             f"Pipeline.apply(clips, masks={{{name!r}: ...}})")
    return out


def detect_frames(frames: Iterable[np.ndarray], detector: Detector, every: int = 1) -> list[np.ndarray]:
    """Runs one detector on every frame (or every `every`-th frame).

    Args:
      frames: uint8 `(H, W, 3)` RGB frames, in video order (any iterable, consumed once).
      detector: an object with `detect(frame) -> (n, 4)` boxes.
      every: detect on frames 0, every, 2 * every, ...; the others get no boxes (see `detect_regions`).

    Returns:
      One float32 `(n_t, 4)` box array per frame.
    """
    return detect_regions(frames, {"_": detector}, every=every)["_"]


def detect_regions(frames: Iterable[np.ndarray], detectors: Mapping[str, Detector],
                   every: int = 1) -> dict[str, list[np.ndarray]]:
    """Runs every region's detector on every frame, in one pass over `frames`.

    Args:
      frames: uint8 `(H, W, 3)` RGB frames, in video order (any iterable, consumed once).
      detectors: region name -> detector.
      every: detect only on frames 0, every, 2 * every, ... (a cheaper first pass for long videos); the
        frames in between get no boxes, and `smooth_tracks` fills them by interpolation, provided
        `every - 1 <= max_gap` (and `hold >= every - 1` so the ends of tracks are covered too).

    Returns:
      Region name -> one float32 `(n_t, 4)` box array per frame.
    """
    if not isinstance(every, int) or every < 1:
        raise ValueError(f"detect_regions: every={every!r} must be an integer >= 1")
    out: dict[str, list[np.ndarray]] = {name: [] for name in detectors}
    for t, frame in enumerate(frames):
        frame = check_frame(frame, f"detect_regions: frame {t}")
        for name, detector in detectors.items():
            found = detector.detect(frame) if t % every == 0 else ()
            out[name].append(np.asarray(found, np.float32).reshape(-1, 4))
    return out
