"""Boxes -> boolean pixel masks, for one frame, a range of frames, or whole in-memory clips.

Masks use the conventions of `Pipeline.apply(clips, masks=...)`: `(T, H, W)` per video (add the batch axis
for a pipeline), True where the region op applies.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from anonvid.regions import boxes as B

SHAPES = ("ellipse", "box")


def boxes_to_mask(boxes, height: int, width: int, shape: str = "ellipse") -> np.ndarray:
    """Paints boxes into a `(height, width)` boolean mask.

    Args:
      boxes: `(n, 4)` `[x0, y0, x1, y1]` boxes in pixel coordinates (pixel `(r, c)` spans `[c, c+1) x [r, r+1)`);
        parts outside the frame are ignored.
      height, width: frame size.
      shape: "box": every pixel the box overlaps; "ellipse": every pixel whose centre lies in the ellipse
        inscribed in the box (closer to a head's outline; pair it with some dilation).

    Returns:
      `(height, width)` bool mask, the union over boxes.

    Raises:
      ValueError: unknown shape or malformed boxes.
    """
    if shape not in SHAPES:
        raise ValueError(f"mask shape must be one of {', '.join(SHAPES)}, got {shape!r}")
    boxes = B.as_boxes(boxes)
    mask = np.zeros((height, width), bool)
    for x0, y0, x1, y1 in boxes:
        if x1 <= x0 or y1 <= y0:
            continue
        c0, c1 = max(int(np.floor(x0)), 0), min(int(np.ceil(x1)), width)
        r0, r1 = max(int(np.floor(y0)), 0), min(int(np.ceil(y1)), height)
        if c1 <= c0 or r1 <= r0:
            continue
        if shape == "box":
            mask[r0:r1, c0:c1] = True
            continue
        cy, cx, ry, rx = (y0 + y1) / 2, (x0 + x1) / 2, (y1 - y0) / 2, (x1 - x0) / 2
        yy = (np.arange(r0, r1) + 0.5 - cy) / ry
        xx = (np.arange(c0, c1) + 0.5 - cx) / rx
        mask[r0:r1, c0:c1] |= yy[:, None] ** 2 + xx[None, :] ** 2 <= 1.0
    return mask


def masks_for_range(per_frame_boxes: Sequence[np.ndarray], start: int, count: int, height: int, width: int,
                    shape: str = "ellipse") -> np.ndarray:
    """`(count, height, width)` masks for frames `[start, start + count)` of a video.

    Use it chunk by chunk on the output of `smooth_tracks` for the whole video, so chunk borders are
    invisible to the smoothing.

    Raises:
      ValueError: the range is not inside the video.
    """
    if start < 0 or count < 0 or start + count > len(per_frame_boxes):
        raise ValueError(f"frames [{start}, {start + count}) are outside the video's {len(per_frame_boxes)} "
                         "frames; smooth the boxes of every frame of the video first")
    out = np.zeros((count, height, width), bool)
    for i in range(count):
        out[i] = boxes_to_mask(per_frame_boxes[start + i], height, width, shape)
    return out
