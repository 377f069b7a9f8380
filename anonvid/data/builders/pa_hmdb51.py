"""PA-HMDB51 (Wu et al. TPAMI 2021): HMDB51 videos with frame-level privacy-attribute segments.

Expected `manual_dir` layout: the HMDB51 layout of `hmdb51.py` plus the PA-HMDB51 repository's annotations::

    manual_dir/
      <class>/<video>.avi
      testTrainMulti_7030_splits/...            (needed by the "standard" protocol; checked when present)
      PrivacyAttributes/<action>.json           (https://github.com/VITA-Group/PA-HMDB51)

Each JSON maps a video file name to {attribute: [[start, end, value], ...], "review": bool, "note": str}
(`note` is optional); `start`/`end` are 0-based inclusive frame indices; `value` is an int or a list of ints
(coexisting classes). Binarisation (METHODS.md B): skin_color != 0, face in {1, 2}, gender != 0,
nudity in {1, 2}, relationship == 1; a list value counts as 1. Frames no segment covers are unlabelled
(`privacy_known` = 0 there); a frame in two overlapping segments is positive if either segment is.

Per example: `privacy_frames` (F, 5) per-frame binary labels, `privacy_known` (F, 5), and `privacy` (5,) the
video label (element-wise max over the labelled frames); a clip's label is the max over its frames.

Protocols (configs):
- ``random60`` (default): the 515 PA-HMDB51 videos split 60/40 by video with a fixed seed (42), as METHODS.md B.
- ``standard``: PA-HMDB51 is evaluation-only: test = the 515 videos; train = every other HMDB51 video listed
  in the official split files (action labels; `privacy` = -1, unknown).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from anonvid.data.builders import action_video, hmdb51
from anonvid.data.builders.base import DatasetError, require_dir

ATTRIBUTES = ("skin_color", "face", "gender", "nudity", "relationship")
ANNOTATION_DIR = "PrivacyAttributes"
NUM_VIDEOS = 515
PROTOCOLS = ("random60", "standard")
_HINT = ("Get PrivacyAttributes/ from https://github.com/VITA-Group/PA-HMDB51 and put it next to the HMDB51 "
         "class folders in manual_dir.")


def binarize(attribute: str, value) -> int:
    """Binary "present / identifiable" label of one segment value (METHODS.md B).

    Args:
      attribute: one of ATTRIBUTES.
      value: the segment's int value, or a list of ints (coexisting classes) which always counts as 1.
    """
    if isinstance(value, list):
        return 1
    value = int(value)
    if attribute in ("skin_color", "gender"):
        return int(value != 0)
    if attribute in ("face", "nudity"):
        return int(value in (1, 2))
    if attribute == "relationship":
        return int(value == 1)
    raise ValueError(f"unknown PA-HMDB51 attribute {attribute!r}; expected one of {ATTRIBUTES}")


def parse_annotation_file(path: Path) -> dict[str, dict[str, list[tuple[int, int, object]]]]:
    """Reads one PrivacyAttributes/<action>.json into {video: {attribute: [(start, end, value)]}}.

    Raises:
      DatasetError: invalid JSON, a missing attribute, or a segment that is not [start <= end, value].
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DatasetError(f"cannot read PA-HMDB51 annotation {path}: {err}") from err
    out = {}
    for video, ann in data.items():
        segments = {}
        for attr in ATTRIBUTES:
            if attr not in ann:
                raise DatasetError(f"{path}: video {video!r} has no {attr!r} segments")
            segs = []
            for seg in ann[attr]:
                if (len(seg) != 3 or not all(isinstance(x, int) for x in seg[:2]) or not 0 <= seg[0] <= seg[1]
                        or not isinstance(seg[2], (int, list))):
                    raise DatasetError(f"{path}: video {video!r} {attr}: segment {seg!r} is not [start, end, value] "
                                       "with 0 <= start <= end")
                segs.append((seg[0], seg[1], seg[2]))
            segments[attr] = segs
        out[video] = segments
    return out


def parse_annotations(annotation_dir: Path) -> dict[str, tuple[str, dict]]:
    """All annotation files: {video file name: (action class, segments)}; the class is the JSON file's stem.

    Raises:
      DatasetError: missing folder, no JSON files, or a video annotated under two classes.
    """
    require_dir(annotation_dir, "PA-HMDB51 annotation folder", _HINT)
    files = sorted(annotation_dir.glob("*.json"))
    if not files:
        raise DatasetError(f"no <action>.json files in {annotation_dir}. {_HINT}")
    out: dict[str, tuple[str, dict]] = {}
    for f in files:
        for video, segs in parse_annotation_file(f).items():
            if video in out:
                raise DatasetError(f"{video} is annotated in both {out[video][0]}.json and {f.name}")
            out[video] = (f.stem, segs)
    return out


def frame_labels(segments: dict[str, list], num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame binary labels of one video.

    Args:
      segments: {attribute: [(start, end, value)]} (0-based, end inclusive).
      num_frames: frames of the video; segments beyond it are cut.

    Returns:
      `(labels, known)`, uint8 (num_frames, 5) each, attributes in ATTRIBUTES order: labels[t, a] is 1 if a
      segment covering frame t binarises to 1; known[t, a] is 1 if any segment covers frame t.
    """
    labels = np.zeros((num_frames, len(ATTRIBUTES)), np.uint8)
    known = np.zeros_like(labels)
    for a, attr in enumerate(ATTRIBUTES):
        for start, end, value in segments[attr]:
            sl = slice(start, min(end, num_frames - 1) + 1)
            known[sl, a] = 1
            labels[sl, a] |= np.uint8(binarize(attr, value))
    return labels, known


def video_label(segments: dict[str, list]) -> np.ndarray:
    """Video-level binary labels int32 (5,): an attribute is 1 if any of its segments binarises to 1."""
    return np.array([max((binarize(attr, v) for _, _, v in segments[attr]), default=0) for attr in ATTRIBUTES],
                    np.int32)


def random_split(videos: list[str], *, train_fraction: float = 0.6, seed: int = 42) -> tuple[list[str], list[str]]:
    """Splits videos by video: a seeded permutation of the sorted names; the first round(f·N) are train."""
    names = sorted(videos)
    order = np.random.default_rng(seed).permutation(len(names))
    k = int(round(train_fraction * len(names)))
    return [names[i] for i in sorted(order[:k])], [names[i] for i in sorted(order[k:])]


class PaHmdb51(hmdb51.Hmdb51):
    """PA-HMDB51: frame-level privacy labels on HMDB51 videos; protocols random60 and standard as configs."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = (f"manual_dir must hold the HMDB51 <class>/ folders, {ANNOTATION_DIR}/ and, for "
                                    f"the standard protocol, {hmdb51.SPLITS_DIR}/. {_HINT}")
    BUILDER_CONFIGS = [action_video.make_config(1, protocol=p, description=f"PA-HMDB51 protocol {p}")
                       for p in PROTOCOLS]
    DEFAULT_CONFIG_NAME = "random60"

    def _labels_features(self) -> dict:
        n = len(ATTRIBUTES)
        return {"privacy": tfds.features.Tensor(shape=(n,), dtype=np.int32),
                "privacy_frames": tfds.features.Tensor(shape=(None, n), dtype=np.uint8),
                "privacy_known": tfds.features.Tensor(shape=(None, n), dtype=np.uint8)}

    def _splits(self, manual_dir: Path) -> dict[str, list]:
        c = self.builder_config
        if c.protocol not in PROTOCOLS:
            raise DatasetError(f"unknown PA-HMDB51 protocol {c.protocol!r}; expected one of {PROTOCOLS}")
        ann = parse_annotations(manual_dir / ANNOTATION_DIR)
        classes = sorted({cls for cls, _ in ann.values()})
        if len(classes) != self.NUM_CLASSES:
            raise DatasetError(f"{manual_dir / ANNOTATION_DIR} covers {len(classes)} classes; PA-HMDB51 has 51")
        self.info.features["action"].names = classes
        label = {cls: i for i, cls in enumerate(classes)}
        self._ann = {f"{cls}/{v}": segs for v, (cls, segs) in ann.items()}
        pa = {f"{cls}/{v}": label[cls] for v, (cls, _) in ann.items()}
        splits_dir = manual_dir / hmdb51.SPLITS_DIR
        if c.protocol == "standard" or splits_dir.is_dir():
            hmdb_classes, entries = hmdb51.split_entries(splits_dir, c.split)
            if hmdb_classes != classes:
                raise DatasetError(f"the HMDB51 split files' classes differ from {ANNOTATION_DIR}'s")
            listed = {rel: lab for items in entries.values() for rel, lab in items}
            for rel in sorted(set(pa) - set(listed)):
                self.skips.bad("label_without_video", rel, "annotated in PA-HMDB51 but not an HMDB51 video")
                del pa[rel]
        if c.protocol == "random60":
            train, test = random_split(list(pa), seed=c.seed)
            return {"train": [(r, pa[r]) for r in train], "test": [(r, pa[r]) for r in test]}
        return {"train": [(r, lab) for r, lab in sorted(listed.items()) if r not in self._ann],
                "test": sorted(pa.items())}

    def _example(self, item, split):
        out = super(hmdb51.Hmdb51, self)._example(item, split)  # Ucf101._example: decode + action
        if out is None:
            return None
        rel, ex = out
        n = len(ex["video"])
        if rel in self._ann:
            ex["privacy_frames"], ex["privacy_known"] = frame_labels(self._ann[rel], n)
            ex["privacy"] = video_label(self._ann[rel])
        else:  # standard protocol, train: HMDB51 videos without privacy labels
            ex["privacy_frames"] = np.zeros((n, len(ATTRIBUTES)), np.uint8)
            ex["privacy_known"] = np.zeros((n, len(ATTRIBUTES)), np.uint8)
            ex["privacy"] = np.full(len(ATTRIBUTES), -1, np.int32)
        return rel, ex
