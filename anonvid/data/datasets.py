"""Dataset registry: a config's `data.name` → a loader returning in-memory splits as dicts of numpy arrays.

The synthetic benchmark is generated on the fly (deterministic by seed). Real datasets are read from their
prepared TFDS builds (`anonvid data prepare NAME --manual_dir DIR`; `anonvid/data/builders/`) through
`tfds.data_source`, with clips read lazily (`anonvid.data.real`). Their data configs take `data_dir` (default
$ANONVID_DATA_DIR or ~/tensorflow_datasets), `config` (the builder config string, e.g. "split1"), `num_frames`,
`frame_stride`, `height`/`width` (resize on the fly; 0 keeps the stored size), `train_clips`, `test_clips`, `seed`.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np

from anonvid.data import synthetic

Split = dict[str, np.ndarray]


def _split_size(cfg: Mapping[str, Any], split: str) -> int:
    """Clips of a synthetic split: `train_size`, `test_size`, and `val_size` for "val" (default `test_size`)."""
    if split == "val" and cfg.get("val_size"):
        return int(cfg["val_size"])
    return int(cfg["train_size"] if split == "train" else cfg["test_size"])


def _synthetic_actions(cfg: Mapping[str, Any], split: str) -> Split:
    size = _split_size(cfg, split)
    return synthetic.actions_split(split, size, seed=int(cfg["seed"]), num_frames=int(cfg["num_frames"]),
                                   height=int(cfg["height"]), width=int(cfg["width"]),
                                   camera_pan=bool(cfg["camera_pan"]))


def _synthetic_surveillance(cfg: Mapping[str, Any], split: str) -> Split:
    size = _split_size(cfg, split)
    return synthetic.surveillance_split(split, size, seed=int(cfg["seed"]), num_frames=int(cfg["num_frames"]),
                                        height=int(cfg["height"]), width=int(cfg["width"]))


def _real_video(name: str):
    def load(cfg: Mapping[str, Any], split: str) -> Split:
        from anonvid.data import real

        return real.load_video_split(name, cfg, split)
    return load


def _vispr(cfg: Mapping[str, Any], split: str) -> Split:
    from anonvid.data import real

    return real.load_image_split("vispr", cfg, split)


def _ucsd(subset: str):
    def load(cfg: Mapping[str, Any], split: str) -> Split:
        from anonvid.data import real

        return real.load_surveillance_split("ucsd", {**dict(cfg), "config": cfg.get("config") or subset}, split)
    return load


LOADERS: dict[str, Callable[[Mapping[str, Any], str], Split]] = {
    "synthetic_actions": _synthetic_actions,
    "synthetic_surveillance": _synthetic_surveillance,
    **{name: _real_video(name) for name in ("ucf101", "hmdb51", "vp_ucf101", "vp_hmdb51", "pa_hmdb51")},
    "vispr": _vispr,
    "ucsd_ped1": _ucsd("ped1"),
    "ucsd_ped2": _ucsd("ped2"),
}

_PRIVACY5 = ("skin_color", "face", "gender", "nudity", "relationship")  # PA-HMDB51 / VP-* order (METHODS.md)
_VISPR1 = ("gender", "face_complete", "face_partial", "semi_nudity", "skin_color", "rel_personal", "rel_social")

# What each dataset's examples hold, for reports and model heads.
NUM_CLASSES = {"synthetic_actions": len(synthetic.ACTIONS), "ucf101": 101, "vp_ucf101": 101, "hmdb51": 51,
               "vp_hmdb51": 51, "pa_hmdb51": 51}
ATTRIBUTES = {"synthetic_actions": synthetic.PRIVACY_ATTRIBUTES, "vp_ucf101": _PRIVACY5, "vp_hmdb51": _PRIVACY5,
              "pa_hmdb51": _PRIVACY5, "vispr": _VISPR1}


def load_split(cfg: Mapping[str, Any], split: str) -> Split:
    """Loads one split ("train", "val" or "test") of the dataset named by `cfg["name"]`."""
    name = cfg["name"]
    if name not in LOADERS:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(sorted(LOADERS))}")
    data = LOADERS[name](cfg, split)
    if not data or len(next(iter(data.values()))) == 0:
        raise ValueError(f"dataset {name!r} split {split!r} is empty")
    return data
