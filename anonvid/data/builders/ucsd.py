"""UCSD Anomaly Detection Ped1 / Ped2 (Mahadevan et al. CVPR 2010) with frame-level ground truth.

Expected `manual_dir` layout (UCSD_Anomaly_Dataset.tar.gz unpacked; manual_dir may be the
`UCSD_Anomaly_Dataset.v1p2` folder or the `UCSDped2` / `UCSDped1` folder itself)::

    UCSDped2/
      Train/Train001/001.tif ...        (normal only)
      Test/Test001/001.tif ...          (TestNNN_gt/ pixel masks are ignored)
      Test/UCSDped2.m                   frame-level ground truth

`UCSDpedN.m` is a MATLAB script with one `TestVideoFile{end+1}.gt_frame = [a:b, c:d];` line per test clip in
order: 1-based inclusive ranges of anomalous frames (frame k is `k.tif` zero-padded). Frames are greyscale TIFFs
read with PIL and stored as uint8 (F, H, W, 1); `anomaly` is uint8 (F,) (all 0 in train).
Official sizes: Ped2 16 train / 12 test clips; Ped1 34 / 36.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from anonvid.data import video_io
from anonvid.data.builders.base import ZLIB, DatasetError, ManualDirBuilder, require_dir, require_file

OFFICIAL_COUNTS = {"ped1": (34, 36), "ped2": (16, 12)}
_LINE = re.compile(r"gt_frame\s*=\s*\[(?P<body>[^\]]*)\]")
_HINT = ("Download UCSD_Anomaly_Dataset.tar.gz from http://www.svcl.ucsd.edu/projects/anomaly/dataset.htm and "
         "unpack it; point manual_dir at UCSD_Anomaly_Dataset.v1p2 (or at UCSDped2 itself).")


def parse_ground_truth(text: str) -> list[list[tuple[int, int]]]:
    """Parses a UCSDpedN.m ground-truth script into per-clip lists of 1-based inclusive (first, last) ranges.

    Accepts `[a:b]`, several comma/space separated ranges `[5:90, 140:200]` and single frames `[7]`.

    Raises:
      DatasetError: no gt_frame lines, or a range that is not `a:b` with 1 <= a <= b.
    """
    clips = []
    for m in _LINE.finditer(text):
        ranges = []
        for part in re.split(r"[,\s]+", m["body"].strip()):
            if not part:
                continue
            bits = part.split(":")
            if not all(b.isdigit() for b in bits) or len(bits) not in (1, 2):
                raise DatasetError(f"ground-truth range {part!r} is not 'a:b' (line {m.group(0)!r})")
            a, b = int(bits[0]), int(bits[-1])
            if not 1 <= a <= b:
                raise DatasetError(f"ground-truth range {part!r} must have 1 <= a <= b")
            ranges.append((a, b))
        clips.append(ranges)
    if not clips:
        raise DatasetError("no 'TestVideoFile{end+1}.gt_frame = [...]' lines found in the ground-truth file")
    return clips


def frame_labels(ranges: list[tuple[int, int]], num_frames: int) -> np.ndarray:
    """uint8 (num_frames,) labels: 1 on frames inside any 1-based inclusive range.

    Raises:
      DatasetError: a range ends after the clip's last frame.
    """
    out = np.zeros(num_frames, np.uint8)
    for a, b in ranges:
        if b > num_frames:
            raise DatasetError(f"ground-truth range {a}:{b} ends after the clip's {num_frames} frames")
        out[a - 1:b] = 1
    return out


def clip_folders(folder: Path, prefix: str) -> list[Path]:
    """The `<prefix>NNN` clip folders of Train/ or Test/, sorted (TestNNN_gt mask folders excluded)."""
    pattern = re.compile(rf"^{prefix}\d{{3}}$")
    return sorted(p for p in folder.iterdir() if p.is_dir() and pattern.match(p.name))


def read_frames(folder: Path, size: tuple[int, int] | None) -> np.ndarray:
    """Reads a clip folder's *.tif frames (sorted by name) as uint8 grey (F, H, W, 1)."""
    from PIL import Image

    files = sorted(folder.glob("*.tif"))
    if not files:
        raise video_io.VideoDecodeError(f"no .tif frames in {folder}")
    frames = []
    for f in files:
        try:
            with Image.open(f) as img:
                img = img.convert("L")
                if size is not None:
                    img = img.resize((size[1], size[0]), Image.BILINEAR)
                frames.append(np.asarray(img, np.uint8))
        except Exception as err:
            raise video_io.VideoDecodeError(f"cannot read frame {f}: {type(err).__name__}: {err}") from err
    shapes = {fr.shape for fr in frames}
    if len(shapes) != 1:
        raise video_io.VideoDecodeError(f"{folder} has frames of different sizes {sorted(shapes)}")
    return np.stack(frames)[..., None]


@dataclasses.dataclass
class UcsdConfig(tfds.core.BuilderConfig):
    """Which subset ("ped1" / "ped2") and the stored frame size (0, 0 = native)."""

    subset: str = "ped2"
    height: int = 0
    width: int = 0


def make_config(subset: str = "ped2", height: int = 0, width: int = 0) -> UcsdConfig:
    """A `UcsdConfig` named "ped2" (native size) or e.g. "ped2_256x256"."""
    if subset not in OFFICIAL_COUNTS:
        raise ValueError(f"unknown UCSD subset {subset!r}; expected one of {sorted(OFFICIAL_COUNTS)}")
    name = subset if not height else f"{subset}_{height}x{width}"
    return UcsdConfig(name=name, subset=subset, height=height, width=width,
                      description=f"UCSD {subset}, frames at {'native size' if not height else f'{height}x{width}'}")


class Ucsd(ManualDirBuilder):
    """UCSD Ped1/Ped2 surveillance clips with frame-level anomaly labels (train: normal only)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"manual_dir must hold UCSDped1/ or UCSDped2/ (Train/, Test/). {_HINT}"
    BUILDER_CONFIGS = [make_config("ped1"), make_config("ped2"), make_config("ped2", 256, 256)]
    DEFAULT_CONFIG_NAME = "ped2"

    def _info(self) -> tfds.core.DatasetInfo:
        c = self.builder_config
        h, w = (c.height, c.width) if c.height else (None, None)
        return tfds.core.DatasetInfo(
            builder=self, description=__doc__,
            features=tfds.features.FeaturesDict({
                "video": tfds.features.Tensor(shape=(None, h, w, 1), dtype=np.uint8, encoding=ZLIB),
                "anomaly": tfds.features.Tensor(shape=(None,), dtype=np.uint8),
                "video_id": tfds.features.Text(),
                "index": tfds.features.Scalar(dtype=np.int64),
            }), disable_shuffling=True)

    def _root(self, manual_dir: Path) -> Path:
        folder = f"UCSD{self.builder_config.subset}"
        for root in (manual_dir / folder, manual_dir):
            if (root / "Train").is_dir() and (root / "Test").is_dir():
                return root
        raise DatasetError(f"no {folder}/Train and {folder}/Test under {manual_dir}. {_HINT}")

    def _splits(self, manual_dir: Path) -> dict[str, list]:
        root = self._root(manual_dir)
        subset = self.builder_config.subset
        gt_file = require_file(root / "Test" / f"UCSD{subset}.m", f"UCSD {subset} ground truth", _HINT)
        gt = parse_ground_truth(gt_file.read_text(encoding="utf-8", errors="replace"))
        train = clip_folders(require_dir(root / "Train", "UCSD Train folder", _HINT), "Train")
        test = clip_folders(root / "Test", "Test")
        by_name = {p.name: p for p in test}
        items = []
        for k, ranges in enumerate(gt, start=1):
            name = f"Test{k:03d}"
            if name not in by_name:
                self.skips.bad("label_without_video", name, f"{gt_file.name} has ground truth for clip {k} but "
                               f"{root / 'Test' / name} does not exist")
                continue
            items.append((by_name.pop(name), ranges))
        for name in sorted(by_name):
            self.skips.bad("missing_label", name, f"{root / 'Test' / name} has no ground-truth line in {gt_file.name}")
        return {"train": [(p, None) for p in train], "test": items}

    def _example(self, item, split):
        folder, ranges = item
        c = self.builder_config
        try:
            video = read_frames(folder, (c.height, c.width) if c.height else None)
        except video_io.VideoDecodeError as err:
            self.skips.bad("corrupt_video", folder.name, str(err))
            return None
        n = len(video)
        if ranges is None:
            labels = np.zeros(n, np.uint8)
        else:
            try:
                labels = frame_labels(ranges, n)
            except DatasetError as err:
                self.skips.bad("bad_ground_truth", folder.name, str(err))
                return None
        return folder.name, {"video": video, "anomaly": labels, "video_id": folder.name}
