"""Region masks from offline detectors, for face- and person-aware minimization (`faces(blur=4)`).

The minimization grammar restricts shape-preserving ops to named regions (`blur(4)@face`, sugar
`faces(blur=4)`); this package produces those masks:

    from anonvid import regions
    out = regions.apply_with_detection("ts(2)|faces(blur=4)", clips)        # detect, smooth, paint, apply
    masks = regions.region_masks(clips, ("face", "person"))                 # {"face": bool (B, T, H, W), ...}

Long videos, in chunks (see `detect`): `detect_regions` on every frame, `smooth_tracks` over the whole
video, then `masks_for_range` per chunk. Modules: `detectors` (Haar faces, HOG people; OpenCV is the optional
extra `anonvid[faces]`), `smoothing` (tracks, gap filling, hold, dilation), `masks` (boxes -> pixels),
`boxes` (IoU, merging), `detect` (the first pass), `clips` (in-memory convenience).
"""
from anonvid.regions.boxes import dilate, iou_matrix, merge_overlapping
from anonvid.regions.clips import apply_with_detection, region_masks
from anonvid.regions.detect import build_detectors, detect_frames, detect_regions
from anonvid.regions.detectors import (DETECTORS, INSTALL_HINT, REGION_DETECTORS, Detector, HaarFaceDetector,
                                       HogPersonDetector, get_detector)
from anonvid.regions.masks import boxes_to_mask, masks_for_range
from anonvid.regions.smoothing import Track, link_tracks, smooth_tracks

__all__ = [
    "DETECTORS", "Detector", "HaarFaceDetector", "HogPersonDetector", "INSTALL_HINT", "REGION_DETECTORS",
    "Track", "apply_with_detection", "boxes_to_mask", "build_detectors", "detect_frames", "detect_regions",
    "dilate", "get_detector", "iou_matrix", "link_tracks", "masks_for_range", "merge_overlapping",
    "region_masks", "smooth_tracks",
]
