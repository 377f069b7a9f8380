"""Offline region detectors: faces (OpenCV Haar cascades) and people (OpenCV HOG), behind one interface.

A detector is any object with `detect(frame) -> boxes`: `frame` a uint8 `(H, W, 3)` RGB image, `boxes` a
float32 `(n, 4)` array of `[x0, y0, x1, y1]` in the frame's pixel coordinates. Each detector works on a copy
downscaled so that its longest side is at most `max_side` (1080p costs about as much as 640x360) and scales
the boxes back; overlapping boxes are merged into their union.

OpenCV is an optional extra (`pip install 'anonvid[faces]'`); it is imported when a detector is built.
OpenCV cascades and HOG descriptors are not thread-safe: build one detector per thread.
"""
from __future__ import annotations

import abc
from typing import Callable, Protocol

import numpy as np

from anonvid.regions import boxes as B

INSTALL_HINT = "face/person-aware ops need the optional extra: pip install 'anonvid[faces]'"


class Detector(Protocol):
    """What `detect_frames` and `region_masks` need from a detector."""

    def detect(self, frame: np.ndarray) -> np.ndarray:
        ...


def import_cv2():
    """Imports OpenCV, or raises ImportError saying how to install it."""
    try:
        import cv2
    except ImportError as err:
        raise ImportError(f"{INSTALL_HINT} (import cv2 failed: {err})") from err
    return cv2


def check_frame(frame, where: str) -> np.ndarray:
    """Validates one RGB frame: uint8 `(H, W, 3)`; returns it as a contiguous numpy array."""
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[-1] != 3:
        raise ValueError(f"{where}: expected one uint8 RGB frame of shape (H, W, 3), got shape {frame.shape}; "
                         "repeat a grey channel with np.repeat(frame, 3, axis=-1)")
    if frame.dtype != np.uint8:
        raise ValueError(f"{where}: expected a uint8 frame (0..255), got dtype {frame.dtype}; convert float "
                         "frames in [0, 1] with np.round(frame * 255).astype(np.uint8)")
    return np.ascontiguousarray(frame)


class _Downscaled(abc.ABC):
    """Shared part: downscale to `max_side`, detect, scale back, merge."""
    name = "detector"

    def __init__(self, max_side: int, merge_iou: float):
        if not isinstance(max_side, int) or max_side < 32:
            raise ValueError(f"{self.name}: max_side={max_side!r} must be an integer >= 32 (pixels)")
        if not 0.0 <= merge_iou <= 1.0:
            raise ValueError(f"{self.name}: merge_iou={merge_iou!r} must be in [0, 1]")
        self.cv2 = import_cv2()
        self.max_side = max_side
        self.merge_iou = merge_iou

    @abc.abstractmethod
    def _detect_small(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Boxes `(n, 4)` and scores `(n,)` on the downscaled RGB image."""

    def detect(self, frame: np.ndarray) -> np.ndarray:
        """Boxes `[x0, y0, x1, y1]` (float32 `(n, 4)`) of the objects in one uint8 RGB `(H, W, 3)` frame."""
        frame = check_frame(frame, self.name)
        h, w = frame.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        small = frame
        if scale < 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            small = self.cv2.resize(frame, size, interpolation=self.cv2.INTER_AREA)
        boxes, scores = self._detect_small(small)
        if len(boxes) == 0:
            return np.zeros((0, 4), np.float32)
        sy, sx = h / small.shape[0], w / small.shape[1]
        boxes = boxes.astype(np.float32) * np.float32([sx, sy, sx, sy])
        return B.merge_overlapping(boxes, scores, self.merge_iou)


def _xywh_to_boxes(rects) -> np.ndarray:
    rects = np.asarray(rects, np.float32).reshape(-1, 4)
    return np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], axis=1)


class HaarFaceDetector(_Downscaled):
    """Faces with OpenCV's Haar cascades: frontal (default cascade) plus profile on the frame and its mirror.

    Args:
      max_side: longest side of the copy the cascades run on.
      scale_factor, min_neighbors: `CascadeClassifier.detectMultiScale` settings (lower min_neighbors finds
        more faces and more false positives; false positives only blur a little extra).
      min_size: smallest face, in pixels of the downscaled copy (the cascades' window is 24 / 20x20).
      profile: also run the profile cascade (on the frame and its mirror image: it only knows one side).
      merge_iou: overlapping boxes above this IoU are merged into their union.
    """
    name = "haar_face"

    def __init__(self, max_side: int = 640, scale_factor: float = 1.1, min_neighbors: int = 4,
                 min_size: int = 24, profile: bool = True, merge_iou: float = 0.3):
        super().__init__(max_side, merge_iou)
        if not scale_factor > 1.0:
            raise ValueError(f"haar_face: scale_factor={scale_factor!r} must be > 1")
        cv2 = self.cv2
        self.frontal = self._load("haarcascade_frontalface_default.xml")
        self.profile = self._load("haarcascade_profileface.xml") if profile else None
        self.kwargs = dict(scaleFactor=scale_factor, minNeighbors=int(min_neighbors),
                           minSize=(int(min_size), int(min_size)))
        self._gray = lambda image: cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))

    def _load(self, filename: str):
        path = self.cv2.data.haarcascades + filename
        cascade = self.cv2.CascadeClassifier(path)
        if cascade.empty():
            raise ImportError(f"could not load the OpenCV cascade {path}; reinstall the extra: {INSTALL_HINT}")
        return cascade

    def _run(self, cascade, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rects, counts = cascade.detectMultiScale2(gray, **self.kwargs)
        return _xywh_to_boxes(rects), np.asarray(counts, np.float32).reshape(-1)

    def _detect_small(self, image):
        gray = self._gray(image)
        found = [self._run(self.frontal, gray)]
        if self.profile is not None:
            found.append(self._run(self.profile, gray))
            mirrored, counts = self._run(self.profile, np.ascontiguousarray(gray[:, ::-1]))
            w = gray.shape[1]
            mirrored = np.stack([w - mirrored[:, 2], mirrored[:, 1], w - mirrored[:, 0], mirrored[:, 3]], axis=1)
            found.append((mirrored.reshape(-1, 4), counts))
        return np.concatenate([b for b, _ in found]), np.concatenate([s for _, s in found])


class HogPersonDetector(_Downscaled):
    """People with OpenCV's HOG descriptor and its default (Dalal-Triggs) people SVM.

    Args:
      max_side: longest side of the copy the detector runs on (the window is 64x128: people smaller than
        about 128 px tall in that copy are missed).
      hit_threshold: SVM score a window must exceed (raise it to cut false positives).
      win_stride, scale: `HOGDescriptor.detectMultiScale` settings.
      merge_iou: overlapping boxes above this IoU are merged into their union.
    """
    name = "hog_person"

    def __init__(self, max_side: int = 640, hit_threshold: float = 0.0, win_stride: int = 8, scale: float = 1.05,
                 merge_iou: float = 0.3):
        super().__init__(max_side, merge_iou)
        if not scale > 1.0:
            raise ValueError(f"hog_person: scale={scale!r} must be > 1")
        self.hog = self.cv2.HOGDescriptor()
        self.hog.setSVMDetector(self.cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.kwargs = dict(hitThreshold=float(hit_threshold), winStride=(int(win_stride), int(win_stride)),
                           padding=(8, 8), scale=float(scale))

    def _detect_small(self, image):
        if image.shape[0] < 128 or image.shape[1] < 64:
            return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32)
        rects, weights = self.hog.detectMultiScale(image, **self.kwargs)
        return _xywh_to_boxes(rects), np.asarray(weights, np.float32).reshape(-1)


DETECTORS: dict[str, Callable[..., Detector]] = {
    HaarFaceDetector.name: HaarFaceDetector,
    HogPersonDetector.name: HogPersonDetector,
}
# The detector each region name uses unless the caller passes its own.
REGION_DETECTORS = {"face": HaarFaceDetector.name, "person": HogPersonDetector.name}


def get_detector(name: str, **options) -> Detector:
    """Builds the detector called `name` (see `DETECTORS`) with its keyword options.

    Raises:
      ValueError: unknown name (the message lists the known ones).
      ImportError: OpenCV is not installed (the message says how to install it).
    """
    if name not in DETECTORS:
        raise ValueError(f"unknown detector {name!r}; known detectors: {', '.join(sorted(DETECTORS))}")
    return DETECTORS[name](**options)
