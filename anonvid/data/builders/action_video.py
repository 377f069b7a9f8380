"""Shared parts of the action-video builders (UCF101, HMDB51, their VP variants, PA-HMDB51).

One record per video: every decoded frame, resized at build time to the config's (height, width) or kept at
its native size when both are 0 (then resize on the fly when reading). Clips are sampled when reading
(`anonvid.data.video_io.clip_indices`), so one build serves any clip length, stride and number of clips.

Storage is uint8 frames with ZLIB (`Tensor(uint8, ZLIB)`): about F·H·W·3 bytes per video before compression
(UCF101 at 128×171: ≈ 12 MB raw per average 186-frame video, ≈ 160 GB raw for 13,320 videos; ZLIB takes
roughly a third to a half off natural video). Choose the stored size with that in mind.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from anonvid.data import video_io
from anonvid.data.builders.base import ZLIB, ManualDirBuilder

DEFAULT_SIZE = (128, 171)  # C3D/R3D-style storage; random/centre crops and resizes happen when reading


@dataclasses.dataclass
class VideoConfig(tfds.core.BuilderConfig):
    """Which official split and what frame size to store.

    Attributes:
      split: official split number (1, 2 or 3) where the dataset has several.
      height, width: stored frame size; 0, 0 keeps every video's native size (resize when reading).
      protocol: dataset-specific split protocol (PA-HMDB51: "random60" or "standard").
      seed: seed of random split protocols.
    """

    split: int = 1
    height: int = DEFAULT_SIZE[0]
    width: int = DEFAULT_SIZE[1]
    protocol: str = ""
    seed: int = 42


def config_name(split: int, height: int, width: int, protocol: str = "") -> str:
    """Canonical config name: "split1" at the default size, else "split1_224x224" / "split1_native"."""
    base = protocol or f"split{split}"
    if (height, width) == DEFAULT_SIZE:
        return base
    return f"{base}_native" if (height, width) == (0, 0) else f"{base}_{height}x{width}"


def make_config(split: int = 1, height: int = DEFAULT_SIZE[0], width: int = DEFAULT_SIZE[1], *,
                protocol: str = "", seed: int = 42, description: str = "") -> VideoConfig:
    """A `VideoConfig` with its canonical name."""
    if split not in (1, 2, 3):
        raise ValueError(f"split={split}; the official splits are 1, 2 and 3")
    if (height == 0) != (width == 0) or height < 0 or width < 0:
        raise ValueError(f"height, width = {height}, {width}: both positive, or both 0 for native size")
    return VideoConfig(name=config_name(split, height, width, protocol), split=split, height=height, width=width,
                       protocol=protocol, seed=seed,
                       description=description or f"split {split}, frames stored at "
                                                  f"{'native size' if not height else f'{height}x{width}'}")


def video_feature(cfg: VideoConfig) -> tfds.features.Tensor:
    """The `video` feature: uint8 (F, H, W, 3) with ZLIB; F (and H, W at native size) vary per video."""
    h, w = (cfg.height, cfg.width) if cfg.height else (None, None)
    return tfds.features.Tensor(shape=(None, h, w, 3), dtype=np.uint8, encoding=ZLIB)


class ActionVideoBuilder(ManualDirBuilder):
    """Base of the action-video builders: decodes a listed video into a record (subclasses add labels)."""

    def _decode(self, path: Path, key: str) -> tuple[np.ndarray, float] | None:
        """Decodes one video (resized to the config size); None (counted) if missing or corrupt."""
        c = self.builder_config
        if not path.is_file():
            self.skips.bad("missing_video", key, f"listed in the split files but not on disk: {path}")
            return None
        try:
            return video_io.read_video(path, size=(c.height, c.width) if c.height else None)
        except video_io.VideoDecodeError as err:
            self.skips.bad("corrupt_video", key, str(err))
            return None
