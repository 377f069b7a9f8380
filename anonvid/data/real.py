"""Prepared real datasets as splits for the trainers: labels in memory, clips read lazily from array_record.

A split is a dict like the synthetic ones (`video` (N, T, H, W, 3) uint8, `action` (N,), `privacy` (N, A)), but
`video` (or `image`) is a `ClipColumn`: it has `shape`, `dtype`, `len()` and indexing like a numpy array and
reads (decompresses, samples, resizes) only the records it is asked for, through `tfds.data_source`.
`pipeline.ArraySource` keeps such columns lazy, so the grain training input never holds a split in memory.
`np.asarray(column)` still materialises the whole split: code that does that (the leakage protocol's
`anonymize_split`, `dual_vit` evaluation's `_predict`, the minimization grid) needs the split to fit in RAM.

Clip sampling (`video_io.clip_indices`): train = `train_clips` clips per video at seeded random positions
(fixed for the run: a new draw per epoch would need a per-epoch transform), test = `test_clips` evenly
spaced clips per video (multi-clip evaluation); each clip is one example and `video_index` says which video
it came from (average clip scores per video for video-level accuracy with `video_level_mean`). PA-HMDB51
clip privacy labels are the element-wise max of the clip's frame labels (METHODS.md B).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from anonvid.data import video_io
from anonvid.data.builders import base, registry


class ClipColumn:
    """A lazily read (N, T, H, W, C) uint8 column over a tfds data source.

    Args:
      source: random-access source of record dicts.
      key: the record field ("video" or "image").
      record: record index of each example (N,).
      frames: frame indices of each example (N, T), or None for images.
      size: (H, W) to resize to on the fly, or None to keep the stored size (which must then be fixed).
      channels: output channels (a grey stored video is repeated to 3 when 3).
      stored_hw: stored frame size, used for `shape` when `size` is None.
    """

    def __init__(self, source, key: str, record: np.ndarray, frames: np.ndarray | None,
                 size: tuple[int, int] | None, channels: int, stored_hw: tuple[int, int] | None = None):
        self._source, self._key, self._record, self._frames = source, key, np.asarray(record), frames
        self._size, self._channels = size, channels
        hw = tuple(size) if size else stored_hw
        if hw is None or None in hw:
            raise ValueError(f"{key}: frames are stored at native (varying) size; set data height/width to "
                             "resize on the fly")
        lead = (len(self._record),) + ((frames.shape[1],) if frames is not None else ())
        self.shape = lead + tuple(hw) + (channels,)
        self.dtype = np.dtype(np.uint8)
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def _one(self, i: int) -> np.ndarray:
        x = np.asarray(self._source[int(self._record[i])][self._key])
        if self._frames is not None:
            x = x[self._frames[i]]
        else:
            x = x[None]
        if self._size:
            x = video_io.resize_frames(x, self._size)
        if x.shape[-1] != self._channels:
            x = np.repeat(x, self._channels, axis=-1)
        return x if self._frames is not None else x[0]

    def __getitem__(self, index):
        if isinstance(index, (int, np.integer)):
            i = int(index) + (len(self) if index < 0 else 0)
            if not 0 <= i < len(self):
                raise IndexError(f"index {index} out of range for {len(self)} examples")
            return self._one(i)
        ids = np.arange(len(self))[index]
        return np.stack([self._one(int(i)) for i in ids]) if len(ids) else np.zeros((0,) + self.shape[1:], np.uint8)

    def __array__(self, dtype=None, copy=None):
        out = self[:]
        return out if dtype is None else out.astype(dtype)


def video_level_mean(scores: np.ndarray, video_index: np.ndarray) -> np.ndarray:
    """Averages per-clip scores (N, ...) over the clips of each video (multi-clip evaluation) -> (V, ...)."""
    video_index = np.asarray(video_index)
    uniq, inv = np.unique(video_index, return_inverse=True)
    out = np.zeros((len(uniq),) + np.shape(scores)[1:], np.float64)
    np.add.at(out, inv, scores)
    return out / np.bincount(inv)[(slice(None),) + (None,) * (out.ndim - 1)]


def open_prepared(dataset: str, cfg: Mapping[str, Any]):
    """The prepared builder named by a data config, or a `DatasetError` that says which command prepares it."""
    data_dir = cfg.get("data_dir") or registry.default_data_dir()
    config = cfg.get("config") or None
    builder = registry.get_builder(dataset, config, data_dir=data_dir)
    if not Path(builder.data_path).is_dir() or not (Path(builder.data_path) / base.INDEX_FILE).is_file():
        raise base.DatasetError(
            f"dataset {dataset}/{builder.builder_config.name} is not prepared in {data_dir}. Run:\n"
            f"  anonvid data prepare {dataset} --manual_dir /path/to/your/{dataset} --config "
            f"{builder.builder_config.name} --data_dir {data_dir}\n(or set data.data_dir / $ANONVID_DATA_DIR to "
            "where you prepared it)")
    return builder


def _index(builder, split: str) -> dict[str, np.ndarray]:
    with np.load(Path(builder.data_path) / base.INDEX_FILE) as z:
        out = {k.split("/", 1)[1]: z[k] for k in z.files if k.startswith(f"{split}/")}
    if not out:
        raise base.DatasetError(f"{builder.name}/{builder.builder_config.name} has no split {split!r}; it has "
                                f"{sorted(builder.info.splits)}")
    return out


def load_video_split(dataset: str, cfg: Mapping[str, Any], split: str) -> dict[str, Any]:
    """An action-video split as clips: `video` (lazy), `action`, `privacy` (if labelled), `video_index`."""
    builder = open_prepared(dataset, cfg)
    split = "test" if split == "val" and "val" not in builder.info.splits else split
    idx = _index(builder, split)
    t, stride = int(cfg.get("num_frames", 16)), int(cfg.get("frame_stride", 2))
    train = split == "train"
    k = int(cfg.get("train_clips", 1) if train else cfg.get("test_clips", 5))
    rng = np.random.default_rng([int(cfg.get("seed", 0)), 7])
    record, frames = [], []
    for v, n in enumerate(idx["num_frames"]):
        frames.append(video_io.clip_indices(int(n), clip_len=t, stride=stride, mode="random" if train else "uniform",
                                            num_clips=k, rng=rng))
        record += [v] * k
    record, frames = np.asarray(record), np.concatenate(frames)
    size = (int(cfg["height"]), int(cfg["width"])) if cfg.get("height") else None
    c = builder.builder_config
    out: dict[str, Any] = {
        "video": ClipColumn(builder.as_data_source()[split], "video", record, frames, size, 3,
                            (c.height, c.width) if c.height else None),
        "action": idx["action"][record].astype(np.int32), "video_index": record}
    if "privacy_frames" in idx:  # PA-HMDB51: clip label = max over the clip's labelled frames
        off = idx["privacy_frames_offsets"]
        out["privacy"] = np.stack([idx["privacy_frames"][off[r] + f].max(0) for r, f in zip(record, frames)])
        out["privacy"] = np.where(idx["privacy"][record] < 0, -1, out["privacy"]).astype(np.int32)
    elif "privacy" in idx:
        out["privacy"] = idx["privacy"][record].astype(np.int32)
    return out


def load_image_split(dataset: str, cfg: Mapping[str, Any], split: str) -> dict[str, Any]:
    """An image split (VISPR): `image` (lazy (N, H, W, 3)) and `privacy` (N, A)."""
    builder = open_prepared(dataset, cfg)
    idx = _index(builder, split)
    c = builder.builder_config
    size = (int(cfg["height"]), int(cfg["width"])) if cfg.get("height") else None
    n = len(idx["privacy"])
    return {"image": ClipColumn(builder.as_data_source()[split], "image", np.arange(n), None, size, 3,
                                (c.height, c.width)),
            "privacy": idx["privacy"].astype(np.int32)}


def load_surveillance_split(dataset: str, cfg: Mapping[str, Any], split: str) -> dict[str, Any]:
    """A UCSD split in memory: `video` list of uint8 (F_i, H, W, C) and `anomaly` list of (F_i,).

    Videos have different lengths, so these are lists (the VAD trainer accepts them); C is 1 with
    `grey=True`, else the grey frames repeated to 3 channels.
    """
    builder = open_prepared(dataset, cfg)
    src = builder.as_data_source()[split]
    size = (int(cfg["height"]), int(cfg["width"])) if cfg.get("height") else None
    videos, labels = [], []
    for i in range(len(src)):
        rec = src[i]
        v = rec["video"] if size is None else video_io.resize_frames(rec["video"], size)
        videos.append(v if cfg.get("grey", True) else np.repeat(v, 3, axis=-1))
        labels.append(np.asarray(rec["anomaly"]))
    return {"video": videos, "anomaly": labels}
