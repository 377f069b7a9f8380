"""VP-UCF101 and VP-HMDB51: UCF101 / HMDB51 with STPrivacy's video-level privacy labels (Li et al. ICCV 2023).

Expected `manual_dir` layout: the UCF101 (or HMDB51) layout of `ucf101.py` (`hmdb51.py`) plus STPrivacy's label
file, either at the top or under `annotations/` as in the STPrivacy repository::

    manual_dir/[annotations/]ucf101_privacy_attribute_label.pickle      (VP-UCF101)
    manual_dir/[annotations/]hmdb51_privacy_attribute_label.pickle      (VP-HMDB51)

The label files are pickled dicts "<Class>/<clip>.mp4" -> int64 array (1, 5) in the order skin_color, face,
gender, nudity, relationship (METHODS.md; the order is checked against PA-HMDB51 in shared/data PROVENANCE).
They are loaded with an allow-listing unpickler (`safe_pickle`): a pickle that references anything but numpy
array reconstruction is refused. Splits are the official UCF101/HMDB51 splits (the labels carry none).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from anonvid.data.builders import hmdb51, ucf101
from anonvid.data.builders.base import DatasetError
from anonvid.data.builders.safe_pickle import load_numpy_pickle

ATTRIBUTES = ("skin_color", "face", "gender", "nudity", "relationship")
_HINT = ("Get the label pickles from https://github.com/ming1993li/stprivacy (annotations/) and put them in "
         "manual_dir or manual_dir/annotations/.")


def load_vp_labels(path: Path) -> dict[str, np.ndarray]:
    """Loads an STPrivacy label pickle into {"<Class>/<clip>.avi": int32 (5,) in {0, 1}}.

    Keys are converted from the pickle's ".mp4" names to the datasets' ".avi" file names.

    Raises:
      safe_pickle.UnsafePickleError: the pickle references a non-numpy global (nothing is executed).
      DatasetError: not a dict of (1, 5) / (5,) binary arrays.
    """
    data = load_numpy_pickle(path)
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: expected a dict of video -> label array, got {type(data).__name__}")
    out = {}
    for key, value in data.items():
        arr = np.asarray(value)
        if not isinstance(key, str) or arr.size != len(ATTRIBUTES) or not np.isin(arr, (0, 1)).all():
            raise DatasetError(f"{path}: entry {key!r} is not a video path with {len(ATTRIBUTES)} binary labels "
                               f"(got {arr.shape} {arr.dtype})")
        out[str(Path(key).with_suffix(".avi"))] = arr.reshape(-1).astype(np.int32)
    return out


def find_label_file(manual_dir: Path, file_name: str) -> Path:
    """The label pickle in `manual_dir` or `manual_dir/annotations`; DatasetError if in neither."""
    for p in (manual_dir / file_name, manual_dir / "annotations" / file_name):
        if p.is_file():
            return p
    raise DatasetError(f"privacy label file {file_name} not found in {manual_dir} or {manual_dir / 'annotations'}. "
                       f"{_HINT}")


class _VpMixin:
    LABEL_FILE = ""

    def _labels_features(self) -> dict:
        return {"privacy": tfds.features.Tensor(shape=(len(ATTRIBUTES),), dtype=np.int32)}

    def _splits(self, manual_dir: Path) -> dict[str, list]:
        entries = super()._splits(manual_dir)
        self._privacy = load_vp_labels(find_label_file(manual_dir, self.LABEL_FILE))
        for key in sorted(set(self._privacy) - self._listed):
            self.skips.bad("label_without_video", key, f"{self.LABEL_FILE} labels a video that no split file lists")
        return entries

    def _example(self, item, split):
        rel, _ = item
        if rel not in self._privacy:
            self.skips.bad("missing_label", rel, f"no privacy label in {self.LABEL_FILE}")
            return None
        out = super()._example(item, split)
        if out is not None:
            out[1]["privacy"] = self._privacy[rel]
        return out


class VpUcf101(_VpMixin, ucf101.Ucf101):
    """UCF101 videos (official split per config) with STPrivacy's 5 video-level privacy labels."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    LABEL_FILE = "ucf101_privacy_attribute_label.pickle"
    MANUAL_DOWNLOAD_INSTRUCTIONS = ucf101.Ucf101.MANUAL_DOWNLOAD_INSTRUCTIONS + f" Plus {LABEL_FILE}: {_HINT}"


class VpHmdb51(_VpMixin, hmdb51.Hmdb51):
    """HMDB51 videos (one official split per config) with STPrivacy's 5 video-level privacy labels."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    LABEL_FILE = "hmdb51_privacy_attribute_label.pickle"
    MANUAL_DOWNLOAD_INSTRUCTIONS = hmdb51.Hmdb51.MANUAL_DOWNLOAD_INSTRUCTIONS + f" Plus {LABEL_FILE}: {_HINT}"
