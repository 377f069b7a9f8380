"""Helpers for the real-dataset tests: where the real annotation files are, and tiny fixtures in real layouts.

The real split/annotation files live in `../shared/data` (see its PROVENANCE.md files; licences forbid copying
them into this repository). Tests copy the few they need into a temporary folder laid out as the dataset
archive is, and write tiny synthetic videos under the real file names. Without `../shared/data` (or
$ANONVID_SHARED_DATA), they skip.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from anonvid.data import video_io

# The checkout's sibling folder `../shared/data`, or wherever $ANONVID_SHARED_DATA points (a checkout elsewhere).
SHARED = Path(os.environ.get("ANONVID_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


def shared(*parts: str) -> Path:
    """Path under ../shared/data, or pytest.skip with the reason when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real annotation files not available: {path} is missing (../shared/data holds the real "
                    "split/annotation files used by these tests)")
    return path


def tiny_video(seed: int, frames: int = 8, height: int = 24, width: int = 32) -> np.ndarray:
    """A small uint8 clip with smooth content (codecs keep it close)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 200, size=3)
    yy, xx = np.mgrid[:height, :width]
    clip = np.empty((frames, height, width, 3), np.uint8)
    for t in range(frames):
        for c in range(3):
            clip[t, ..., c] = np.clip(base[c] + 40 * np.sin((xx + 3 * t + 5 * c) / 5.0) + yy, 0, 255)
    return clip


def write_videos(root: Path, rels: list[str], *, frames: int = 8) -> dict[str, np.ndarray]:
    """Encodes a tiny clip at root/rel for each rel; returns the frames written."""
    out = {}
    for i, rel in enumerate(rels):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        out[rel] = tiny_video(i, frames)
        video_io.write_video(path, out[rel])
    return out


def copy_tree(src: Path, dst: Path) -> Path:
    """Copies a real annotation folder into a fixture (tests only; never into the repository)."""
    shutil.copytree(src, dst)
    return dst
