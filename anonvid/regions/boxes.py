"""Box arithmetic shared by the detectors, the tracker and the mask painter (pure numpy).

A box is `[x0, y0, x1, y1]` in pixel coordinates of its frame (x to the right, y down, `x1 > x0`); a set of
boxes is a float32 array of shape `(n, 4)`, `n` possibly 0.
"""
from __future__ import annotations

import numpy as np


def as_boxes(boxes, where: str = "boxes") -> np.ndarray:
    """Validates and converts `boxes` to a float32 `(n, 4)` array.

    Raises:
      ValueError: not `(n, 4)` (an empty list is accepted), or non-finite coordinates.
    """
    arr = np.asarray(boxes, dtype=np.float32)
    if arr.size == 0:
        return np.zeros((0, 4), np.float32)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"{where}: expected an (n, 4) array of [x0, y0, x1, y1] boxes, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{where}: box coordinates must be finite, got {arr[~np.isfinite(arr).all(1)][:3]}")
    return arr


def areas(boxes: np.ndarray) -> np.ndarray:
    """`(n,)` areas (0 for degenerate boxes)."""
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`(len(a), len(b))` intersection over union (0 where both boxes are degenerate)."""
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    union = areas(a)[:, None] + areas(b)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def merge_overlapping(boxes: np.ndarray, scores: np.ndarray | None = None, iou: float = 0.3) -> np.ndarray:
    """Greedy non-maximum suppression that keeps the union of each suppressed group.

    The best-scoring box (largest when no scores) absorbs every remaining box whose IoU with it exceeds
    `iou`; the group is replaced by its bounding union, so merging never uncovers a pixel that one of the
    overlapping detections covered (the conservative choice for anonymisation).

    Args:
      boxes: `(n, 4)` boxes.
      scores: `(n,)` confidences (higher first), or None to rank by area.
      iou: overlap above which two boxes are the same object, in [0, 1].

    Returns:
      `(m, 4)` float32 boxes, m <= n, in decreasing score order.
    """
    boxes = as_boxes(boxes)
    if len(boxes) == 0:
        return boxes
    order = np.argsort(-(areas(boxes) if scores is None else np.asarray(scores, np.float64)), kind="stable")
    left = list(order)
    out = []
    overlaps = iou_matrix(boxes, boxes)
    while left:
        best = left[0]
        group = [i for i in left if i == best or overlaps[best, i] > iou]
        g = boxes[group]
        out.append([g[:, 0].min(), g[:, 1].min(), g[:, 2].max(), g[:, 3].max()])
        left = [i for i in left if i not in group]
    return np.asarray(out, np.float32)


def dilate(boxes: np.ndarray, factor: float, frame_size: tuple[int, int] | None = None) -> np.ndarray:
    """Grows each box about its centre: width and height are multiplied by `1 + factor`.

    Args:
      boxes: `(n, 4)` boxes.
      factor: relative growth, >= 0 (0.2 turns a 100 px box into a 120 px one).
      frame_size: `(height, width)` to clip the result to the frame, or None.

    Returns:
      `(n, 4)` float32 boxes.
    """
    boxes = as_boxes(boxes)
    half_w = (boxes[:, 2] - boxes[:, 0]) * factor / 2
    half_h = (boxes[:, 3] - boxes[:, 1]) * factor / 2
    out = boxes + np.stack([-half_w, -half_h, half_w, half_h], axis=1)
    if frame_size is not None:
        h, w = frame_size
        out = np.clip(out, 0, [w, h, w, h]).astype(np.float32)
        out = out[(out[:, 2] > out[:, 0]) & (out[:, 3] > out[:, 1])]
    return out.astype(np.float32)
