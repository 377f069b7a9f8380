"""VISPR (Orekondy et al. ICCV 2017) privacy-attribute images: the VISPR1 7-attribute subset and the full set.

Expected `manual_dir` layout (the VISPR image and annotation archives unpacked, plus two files of the official
`tribhuvanesh/vpa` repository)::

    manual_dir/
      images/{train,val,test}2017/<id>.<jpg|png|gif>
      annotations/{train,val,test}2017/<id>.json      {"id", "image_path", "labels": [attribute ids], ...}
      attributes.tsv                                  (vpa repo; needed by the "full" configs)
      {train,val,test}2017.txt                        (vpa repo; optional: if present they define the splits)

Labels: VISPR1 = a4_gender, a9_face_complete, a10_face_partial, a12_semi_nudity, a17_color, a64_rel_personal,
a65_rel_social (METHODS.md); "full" = the 68 attributes of attributes.tsv in its idx order (an id's number is
not its column: always map through the table). An image labelled only a0_safe has all-zero VISPR1 labels.
Official sizes: 10,000 train / 4,167 val / 8,000 test. Images are resized to the config size at build time.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from anonvid.data import video_io
from anonvid.data.builders.base import ZLIB, DatasetError, ManualDirBuilder, read_lines, require_dir, require_file

VISPR1 = ("a4_gender", "a9_face_complete", "a10_face_partial", "a12_semi_nudity", "a17_color", "a64_rel_personal",
          "a65_rel_social")
SPLITS = ("train", "val", "test")
OFFICIAL_COUNTS = {"train": 10000, "val": 4167, "test": 8000}
_HINT = ("Get the images and annotations from https://tribhuvanesh.github.io/vpa/ and attributes.tsv plus the "
         "split lists from https://github.com/tribhuvanesh/vpa; unpack them into manual_dir.")


def parse_attributes(path: Path) -> list[str]:
    """Reads attributes.tsv (header idx, attribute_id, group, description; CRLF) into ids in idx order.

    Raises:
      DatasetError: a bad header, a malformed row, or idx values that are not 0..N-1 in order.
    """
    lines = read_lines(path)
    if not lines or lines[0].split("\t")[:2] != ["idx", "attribute_id"]:
        raise DatasetError(f"{path}: expected the header 'idx<TAB>attribute_id<TAB>group<TAB>description'")
    ids = []
    for n, line in enumerate(lines[1:]):
        parts = line.split("\t")
        if len(parts) < 2 or parts[0] != str(n):
            raise DatasetError(f"{path}: row {n + 2} {line!r} does not start with idx {n}")
        ids.append(parts[1])
    return ids


def read_split_list(path: Path) -> list[str]:
    """Reads a split list ("annotations/<split>2017/<id>.json" per line) into those relative paths."""
    return read_lines(path)


def parse_annotation(path: Path) -> dict:
    """Reads one per-image JSON; returns {"id", "image_path", "labels"} (labels: list of attribute ids).

    Raises:
      DatasetError: unreadable JSON, or missing/ill-typed keys.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DatasetError(f"cannot read VISPR annotation {path}: {err}") from err
    if not isinstance(data.get("labels"), list) or not isinstance(data.get("image_path"), str):
        raise DatasetError(f"{path}: expected keys 'image_path' (str) and 'labels' (list of attribute ids)")
    return {"id": str(data.get("id", path.stem)), "image_path": data["image_path"], "labels": list(data["labels"])}


def label_vector(labels: list[str], attribute_ids: tuple[str, ...] | list[str]) -> np.ndarray:
    """Multi-hot int32 vector over `attribute_ids` (ids not in the list are ignored, e.g. a0_safe for VISPR1)."""
    pos = {a: i for i, a in enumerate(attribute_ids)}
    out = np.zeros(len(attribute_ids), np.int32)
    for lab in labels:
        if lab in pos:
            out[pos[lab]] = 1
    return out


@dataclasses.dataclass
class VisprConfig(tfds.core.BuilderConfig):
    """Attribute subset ("vispr1" or "full") and stored image size."""

    subset: str = "vispr1"
    height: int = 224
    width: int = 224


def make_config(subset: str = "vispr1", height: int = 224, width: int = 224) -> VisprConfig:
    """A `VisprConfig` named "vispr1" / "full" at 224x224, else e.g. "vispr1_112x112"."""
    if subset not in ("vispr1", "full"):
        raise ValueError(f"unknown VISPR subset {subset!r}; expected 'vispr1' or 'full'")
    name = subset if (height, width) == (224, 224) else f"{subset}_{height}x{width}"
    return VisprConfig(name=name, subset=subset, height=height, width=width,
                       description=f"VISPR {subset} labels, images at {height}x{width}")


class Vispr(ManualDirBuilder):
    """VISPR images with multi-label privacy attributes (splits train/val/test)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"manual_dir must hold images/ and annotations/ (and attributes.tsv). {_HINT}"
    BUILDER_CONFIGS = [make_config("vispr1"), make_config("full")]
    DEFAULT_CONFIG_NAME = "vispr1"
    NUM_FULL = 68

    def _info(self) -> tfds.core.DatasetInfo:
        c = self.builder_config
        n = len(VISPR1) if c.subset == "vispr1" else self.NUM_FULL
        return tfds.core.DatasetInfo(
            builder=self, description=__doc__,
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Tensor(shape=(c.height, c.width, 3), dtype=np.uint8, encoding=ZLIB),
                "privacy": tfds.features.Tensor(shape=(n,), dtype=np.int32),
                "image_id": tfds.features.Text(),
                "index": tfds.features.Scalar(dtype=np.int64),
            }), disable_shuffling=True)

    def _splits(self, manual_dir: Path) -> dict[str, list]:
        require_dir(manual_dir / "annotations", "VISPR annotation folder", _HINT)
        require_dir(manual_dir / "images", "VISPR image folder", _HINT)
        if self.builder_config.subset == "vispr1":
            self._ids = VISPR1
        else:
            self._ids = tuple(parse_attributes(require_file(manual_dir / "attributes.tsv", "VISPR attributes.tsv",
                                                            _HINT)))
            if len(self._ids) != self.NUM_FULL:
                raise DatasetError(f"attributes.tsv lists {len(self._ids)} attributes; VISPR has {self.NUM_FULL}")
        self._known = set(self._ids) | set(VISPR1) | {"a0_safe"}
        if (manual_dir / "attributes.tsv").is_file():
            self._known |= set(parse_attributes(manual_dir / "attributes.tsv"))
        splits = {}
        for split in SPLITS:
            listed = manual_dir / f"{split}2017.txt"
            folder = manual_dir / "annotations" / f"{split}2017"
            if listed.is_file():
                splits[split] = read_split_list(listed)
            else:
                require_dir(folder, f"VISPR {split} annotations", _HINT)
                splits[split] = [f"annotations/{split}2017/{p.name}" for p in sorted(folder.glob("*.json"))]
        return splits

    def _example(self, rel, split):
        path = self._manual_dir / rel
        if not path.is_file():
            self.skips.bad("missing_annotation", rel, f"listed in {split}2017.txt but not on disk: {path}")
            return None
        ann = parse_annotation(path)
        unknown = [lab for lab in ann["labels"] if lab not in self._known]
        if unknown:
            self.skips.bad("unknown_attribute", rel, f"labels {unknown} are not VISPR attribute ids")
            return None
        image_path = self._manual_dir / ann["image_path"]
        if not image_path.is_file():
            self.skips.bad("label_without_image", rel, f"its image {image_path} is not on disk")
            return None
        c = self.builder_config
        try:
            image = video_io.read_image(image_path, size=(c.height, c.width))
        except video_io.VideoDecodeError as err:
            self.skips.bad("corrupt_image", rel, str(err))
            return None
        return ann["id"], {"image": image, "privacy": label_vector(ann["labels"], self._ids), "image_id": ann["id"]}
