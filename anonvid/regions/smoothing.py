"""Temporal smoothing of per-frame detections: link boxes into tracks, fill gaps, hold, dilate (pure numpy).

Frame-by-frame detectors miss a face now and then (motion blur, a turned head, a frame the cascade just does
not like), and a mask that vanishes for one frame shows the face for that frame: the most common complaint
about frame-by-frame anonymisers. `smooth_tracks` turns the raw detections of a whole video into boxes that
do not flicker:

1. link: boxes are linked frame to frame into tracks; a detection joins the track whose predicted box (the
   last box, moved by the track's last velocity) it overlaps by IoU >= `iou`, or whose centre is within
   `distance` x the track's box size per elapsed frame; a track stays open through up to `max_gap` frames
   without detection;
2. fill: the frames a track missed between two detections get the linear interpolation of the two boxes;
3. hold: each track is held (its first/last box, unchanged) for `hold` frames before its first and after its
   last detection, so a face is covered from before it is first detected until after it is last seen;
4. dilate: every box is grown about its centre by `dilate` x its width and height, then clipped to the frame.

The result is a list of boxes per frame, ready for `masks.masks_for_range` (chunk by chunk for long videos).
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from anonvid.regions import boxes as B

DEFAULT_MAX_GAP = 10
DEFAULT_HOLD = 5
DEFAULT_DILATE = 0.2
DEFAULT_IOU = 0.2
DEFAULT_DISTANCE = 0.5


@dataclasses.dataclass
class Track:
    """One object's detections: `frames[i]` (increasing) holds `boxes[i]`."""
    frames: list[int]
    boxes: list[np.ndarray]

    def predict(self, frame: int) -> np.ndarray:
        """The box expected at `frame`: the last box moved at the velocity of the last two detections."""
        last = self.boxes[-1]
        if len(self.frames) < 2:
            return last
        velocity = (last - self.boxes[-2]) / (self.frames[-1] - self.frames[-2])
        return last + velocity * (frame - self.frames[-1])


def _check(name: str, value, low, integer: bool, high=None) -> None:
    ok = isinstance(value, (int, np.integer)) if integer else isinstance(value, (int, float, np.number))
    if isinstance(value, bool) or not ok or value < low or (high is not None and value > high):
        kind = "an integer" if integer else "a number"
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"smooth_tracks: {name}={value!r} must be {kind} {bound}")


def link_tracks(per_frame_boxes: Sequence[np.ndarray], *, max_gap: int = DEFAULT_MAX_GAP,
                iou: float = DEFAULT_IOU, distance: float = DEFAULT_DISTANCE) -> list[Track]:
    """Links per-frame boxes into tracks (greedy, best overlap first).

    Args:
      per_frame_boxes: one `(n_t, 4)` array of `[x0, y0, x1, y1]` boxes per frame.
      max_gap: frames a track may go undetected and still be continued.
      iou: minimum IoU between a track's predicted box and a detection to link them.
      distance: alternatively, maximum centre distance per elapsed frame, in units of the predicted box's size
        (sqrt of its area).

    Returns:
      Tracks in order of their first detection; every input box belongs to exactly one track.
    """
    _check("max_gap", max_gap, 0, True)
    _check("iou", iou, 0, False, 1)
    _check("distance", distance, 0, False)
    tracks: list[Track] = []
    open_ids: list[int] = []
    for t, raw in enumerate(per_frame_boxes):
        found = B.as_boxes(raw, f"smooth_tracks: frame {t}")
        open_ids = [k for k in open_ids if t - tracks[k].frames[-1] - 1 <= max_gap]
        pairs = []
        if open_ids and len(found):
            pred = np.stack([tracks[k].predict(t) for k in open_ids]).astype(np.float32)
            overlap = B.iou_matrix(pred, found)
            centre_p = (pred[:, :2] + pred[:, 2:]) / 2
            centre_f = (found[:, :2] + found[:, 2:]) / 2
            dist = np.linalg.norm(centre_p[:, None] - centre_f[None], axis=-1)
            size = np.sqrt(np.maximum(B.areas(pred), 1e-6))[:, None]
            elapsed = np.array([t - tracks[k].frames[-1] for k in open_ids], np.float32)[:, None]
            ok = ((overlap >= iou) & (overlap > 0)) | (dist <= distance * size * elapsed)
            pairs = sorted(zip(*np.nonzero(ok)), key=lambda ij: (-overlap[ij], dist[ij]))
        used_tracks, used_found = set(), set()
        for i, j in pairs:
            if i in used_tracks or j in used_found:
                continue
            used_tracks.add(i)
            used_found.add(j)
            tracks[open_ids[i]].frames.append(t)
            tracks[open_ids[i]].boxes.append(found[j])
        for j in range(len(found)):
            if j not in used_found:
                tracks.append(Track([t], [found[j]]))
                open_ids.append(len(tracks) - 1)
    return tracks


def track_boxes(track: Track, num_frames: int, hold: int) -> dict[int, np.ndarray]:
    """Frame -> box for one track: detections, linear interpolation across gaps, `hold` frames at both ends."""
    out = {}
    frames, boxes = track.frames, track.boxes
    for (f0, b0), (f1, b1) in zip(zip(frames, boxes), zip(frames[1:], boxes[1:])):
        for f in range(f0, f1):
            a = (f - f0) / (f1 - f0)
            out[f] = (1 - a) * b0 + a * b1
    out[frames[-1]] = boxes[-1]
    for f in range(max(0, frames[0] - hold), frames[0]):
        out[f] = boxes[0]
    for f in range(frames[-1] + 1, min(num_frames, frames[-1] + hold + 1)):
        out[f] = boxes[-1]
    return out


def smooth_tracks(per_frame_boxes: Sequence[np.ndarray], *, max_gap: int = DEFAULT_MAX_GAP,
                  hold: int = DEFAULT_HOLD, dilate: float = DEFAULT_DILATE, iou: float = DEFAULT_IOU,
                  distance: float = DEFAULT_DISTANCE, frame_size: tuple[int, int] | None = None
                  ) -> list[np.ndarray]:
    """Smooths a whole video's per-frame detections into flicker-free boxes (see the module docstring).

    Args:
      per_frame_boxes: one `(n_t, 4)` float array of `[x0, y0, x1, y1]` pixel boxes per frame, every frame
        of the video in order (a frame without detections gives an empty array).
      max_gap: longest run of missed frames inside a track that is filled by interpolation (>= 0).
      hold: frames each track is extended before its first and after its last detection (>= 0).
      dilate: relative growth of every box, >= 0 (0.2: width and height x 1.2, about the centre).
      iou: minimum IoU to link a detection to a track, in [0, 1].
      distance: or maximum centre distance per elapsed frame, in units of the track's box size.
      frame_size: `(height, width)` to clip boxes to the frame, or None.

    Returns:
      `len(per_frame_boxes)` float32 arrays `(m_t, 4)`, one box per track alive at frame t (m_t >= n_t).

    Raises:
      ValueError: a frame's boxes are not `(n, 4)`, or a parameter is out of range.
    """
    _check("hold", hold, 0, True)
    _check("dilate", dilate, 0, False)
    num_frames = len(per_frame_boxes)
    tracks = link_tracks(per_frame_boxes, max_gap=max_gap, iou=iou, distance=distance)
    per_frame: list[list[np.ndarray]] = [[] for _ in range(num_frames)]
    for track in tracks:
        for f, box in track_boxes(track, num_frames, hold).items():
            per_frame[f].append(box)
    return [B.dilate(np.asarray(bs, np.float32).reshape(-1, 4), dilate, frame_size) for bs in per_frame]
