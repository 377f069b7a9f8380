"""HMDB51 (Kuehne et al. 2011) from the official archive layout; one official split per config.

Expected `manual_dir` layout::

    manual_dir/
      <class>/<video>.avi                                     (hmdb51_org.rar: one .rar per class, unpacked)
      testTrainMulti_7030_splits/<class>_test_split{1,2,3}.txt (test_train_splits.rar)

Each split file line is "<video>.avi <id> " with id 1 = train, 2 = test, 0 = unused in that split. A config
uses exactly one split: the reference code took the union of the three split files, which puts videos that
are test videos of one split into training (METHODS.md A). Official size per split: 3,570 train / 1,530 test
(1,666 unused) of 6,766 listed videos.
"""
from __future__ import annotations

import re
from pathlib import Path

import tensorflow_datasets as tfds

from anonvid.data.builders import ucf101
from anonvid.data.builders.base import DatasetError, read_lines, require_dir

SPLITS_DIR = "testTrainMulti_7030_splits"
OFFICIAL_COUNTS = (3570, 1530, 1666)  # train, test, unused: the same for splits 1, 2 and 3
_ROLE = {"1": "train", "2": "test", "0": "unused"}
_NAME = re.compile(r"^(?P<cls>.+)_test_split(?P<k>[123])\.txt$")
_HINT = ("Download hmdb51_org.rar and test_train_splits.rar from "
         "https://serre-lab.clps.brown.edu/resource/hmdb-a-large-human-motion-database/, unpack the per-class "
         "archives into manual_dir/<class>/ and the splits into manual_dir/testTrainMulti_7030_splits/.")


def parse_split_file(path: Path) -> list[tuple[str, str]]:
    """Reads one `<class>_test_split<k>.txt` into (video file name, role) with role train/test/unused.

    Raises:
      DatasetError: a line that is not "<name>.avi <0|1|2>".
    """
    out = []
    for n, line in enumerate(read_lines(path), start=1):
        parts = line.split()
        if len(parts) != 2 or not parts[0].endswith(".avi") or parts[1] not in _ROLE:
            raise DatasetError(f"{path}: line {n} {line!r} is not '<video>.avi <0|1|2>'")
        out.append((parts[0], _ROLE[parts[1]]))
    return out


def split_entries(splits_dir: Path, split: int) -> tuple[list[str], dict[str, list[tuple[str, int]]]]:
    """Classes (sorted) and {"train", "test", "unused"} entries (relative path "<class>/<video>.avi", label).

    The class comes from the split file name, matched with the full `_test_split<k>.txt` suffix (class names
    such as `climb` / `climb_stairs` are prefixes of each other).

    Raises:
      DatasetError: missing folder, no split files for `split`, or a video listed twice.
    """
    require_dir(splits_dir, "HMDB51 split folder", _HINT)
    files = {}
    for f in splits_dir.iterdir():
        m = _NAME.match(f.name)
        if m and int(m["k"]) == split:
            files[m["cls"]] = f
    if not files:
        raise DatasetError(f"no HMDB51 split files <class>_test_split{split}.txt in {splits_dir}. {_HINT}")
    classes = sorted(files)
    entries: dict[str, list[tuple[str, int]]] = {"train": [], "test": [], "unused": []}
    seen: dict[str, str] = {}
    for label, cls in enumerate(classes):
        for name, role in parse_split_file(files[cls]):
            rel = f"{cls}/{name}"
            if rel in seen:
                raise DatasetError(f"{rel} is listed twice in split {split} ({seen[rel]} and {role})")
            seen[rel] = role
            entries[role].append((rel, label))
    return classes, entries


class Hmdb51(ucf101.Ucf101):
    """HMDB51 action videos, one official split per config (never the union of splits)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: one official split per config."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"manual_dir must hold <class>/ video folders and {SPLITS_DIR}/. {_HINT}"
    NUM_CLASSES = 51

    def _video_path(self, rel: str) -> Path:
        return self._manual_dir / rel

    def _splits(self, manual_dir: Path) -> dict[str, list]:
        classes, entries = split_entries(manual_dir / SPLITS_DIR, self.builder_config.split)
        if len(classes) != self.NUM_CLASSES:
            raise DatasetError(f"{manual_dir / SPLITS_DIR} has split files for {len(classes)} classes; HMDB51 has "
                               f"{self.NUM_CLASSES}")
        missing = [c for c in classes if not (manual_dir / c).is_dir()]
        if len(missing) == len(classes):
            raise DatasetError(f"no HMDB51 class folders in {manual_dir} (e.g. {manual_dir / classes[0]}). {_HINT}")
        self.info.features["action"].names = classes
        self._listed = {rel for items in entries.values() for rel, _ in items}  # includes unused (0) videos
        return {"train": entries["train"], "test": entries["test"]}
