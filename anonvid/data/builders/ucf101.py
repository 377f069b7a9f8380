"""UCF101 (Soomro et al. 2012) from the official archive layout; splits 1/2/3 as configs.

Expected `manual_dir` layout (the two official archives unpacked side by side)::

    manual_dir/
      UCF-101/<ClassName>/v_<ClassName>_gGG_cCC.avi        (UCF101.rar)
      ucfTrainTestlist/classInd.txt, trainlist0{1,2,3}.txt, testlist0{1,2,3}.txt

The class of a clip comes from its folder through classInd.txt, never from the file name (HandstandPushups
clips are named v_HandStandPushups_...). Split files are CRLF; lines are stripped.
Official sizes: split 1 9,537 train / 3,783 test; split 2 9,586 / 3,734; split 3 9,624 / 3,696.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from anonvid.data.builders import action_video
from anonvid.data.builders.base import DatasetError, read_lines, require_dir, require_file

SPLITS_DIR = "ucfTrainTestlist"
VIDEOS_DIR = "UCF-101"
OFFICIAL_COUNTS = {1: (9537, 3783), 2: (9586, 3734), 3: (9624, 3696)}
_HINT = ("Download UCF101.rar and UCF101TrainTestSplits-RecognitionTask.zip from "
         "https://www.crcv.ucf.edu/data/UCF101.php and unpack both into the same folder (giving UCF-101/ and "
         "ucfTrainTestlist/).")


def parse_class_index(path: Path) -> list[str]:
    """Reads classInd.txt ("<1-based index> <ClassName>" per line) into the class names in index order.

    Raises:
      DatasetError: a malformed line, or indices that are not 1..N in order.
    """
    names = []
    for i, line in enumerate(read_lines(path), start=1):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise DatasetError(f"{path}: line {i} {line!r} is not '<index> <ClassName>'")
        if int(parts[0]) != i:
            raise DatasetError(f"{path}: line {i} has index {parts[0]}; expected {i} (indices run 1..N in order)")
        names.append(parts[1])
    return names


def parse_split_list(path: Path, classes: list[str]) -> list[tuple[str, int]]:
    """Reads a trainlist/testlist file into (relative path "Class/v_....avi", 0-based class) pairs.

    Train lines carry a 1-based label, which must agree with the folder's class; test lines are the path alone.

    Raises:
      DatasetError: unknown class folder, label/folder disagreement, or a malformed line.
    """
    index = {name: i for i, name in enumerate(classes)}
    out = []
    for n, line in enumerate(read_lines(path), start=1):
        parts = line.split()
        rel = parts[0]
        folder = rel.split("/")[0]
        if "/" not in rel or folder not in index:
            raise DatasetError(f"{path}: line {n} {line!r}: class folder {folder!r} is not in classInd.txt")
        if len(parts) > 2 or (len(parts) == 2 and not parts[1].isdigit()):
            raise DatasetError(f"{path}: line {n} {line!r} is not '<Class>/<file>.avi [label]'")
        if len(parts) == 2 and int(parts[1]) - 1 != index[folder]:
            raise DatasetError(f"{path}: line {n}: label {parts[1]} disagrees with folder {folder!r} "
                               f"(classInd index {index[folder] + 1})")
        out.append((rel, index[folder]))
    return out


def split_entries(splits_dir: Path, split: int) -> tuple[list[str], dict[str, list[tuple[str, int]]]]:
    """Classes and the {"train", "test"} entries of one official split, checked for overlap.

    Args:
      splits_dir: the ucfTrainTestlist folder.
      split: 1, 2 or 3.

    Returns:
      `(classes, {"train": [(rel, label)], "test": [(rel, label)]})`.
    """
    require_dir(splits_dir, "UCF101 split folder", _HINT)
    classes = parse_class_index(require_file(splits_dir / "classInd.txt", "UCF101 classInd.txt", _HINT))
    entries = {}
    for name, prefix in (("train", "trainlist"), ("test", "testlist")):
        f = require_file(splits_dir / f"{prefix}0{split}.txt", f"UCF101 {prefix}0{split}.txt", _HINT)
        entries[name] = parse_split_list(f, classes)
    overlap = {r for r, _ in entries["train"]} & {r for r, _ in entries["test"]}
    if overlap:
        raise DatasetError(f"UCF101 split {split}: {len(overlap)} clips are in both train and test, e.g. "
                           f"{sorted(overlap)[:3]}; the split files are not the official ones")
    return classes, entries


class Ucf101(action_video.ActionVideoBuilder):
    """UCF101 action videos, one official split per config."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: official splits, frames stored uint8 ZLIB."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"manual_dir must hold {VIDEOS_DIR}/ and {SPLITS_DIR}/. {_HINT}"
    BUILDER_CONFIGS = [action_video.make_config(k) for k in (1, 2, 3)]
    DEFAULT_CONFIG_NAME = "split1"
    NUM_CLASSES = 101

    def _video_path(self, rel: str) -> Path:
        return self._manual_dir / VIDEOS_DIR / rel

    def _labels_features(self) -> dict:
        return {}

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self, description=__doc__,
            features=tfds.features.FeaturesDict({
                "video": action_video.video_feature(self.builder_config),
                "action": tfds.features.ClassLabel(num_classes=self.NUM_CLASSES),
                "fps": tfds.features.Scalar(dtype=np.float32),
                "video_id": tfds.features.Text(),
                "index": tfds.features.Scalar(dtype=np.int64),
                **self._labels_features(),
            }),
            supervised_keys=("video", "action"), disable_shuffling=True)

    def _splits(self, manual_dir: Path) -> dict[str, list]:
        require_dir(manual_dir / VIDEOS_DIR, "UCF101 video folder", _HINT)
        classes, entries = split_entries(manual_dir / SPLITS_DIR, self.builder_config.split)
        if len(classes) != self.NUM_CLASSES:
            raise DatasetError(f"classInd.txt lists {len(classes)} classes; UCF101 has {self.NUM_CLASSES}")
        self.info.features["action"].names = classes
        self._listed = {rel for items in entries.values() for rel, _ in items}
        return entries

    def _example(self, item, split):
        rel, label = item
        decoded = self._decode(self._video_path(rel), rel)
        if decoded is None:
            return None
        video, fps = decoded
        return rel, {"video": video, "action": label, "fps": fps, "video_id": rel}
