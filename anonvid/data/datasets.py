"""Dataset registry: a config's `data.name` → a loader returning in-memory splits as dicts of numpy arrays.

The synthetic benchmark is generated on the fly (deterministic by seed). Real datasets join this registry
through their TFDS builders (`anonvid/data/builders/`), read with `tfds.data_source`.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np

from anonvid.data import synthetic

Split = dict[str, np.ndarray]


def _synthetic_actions(cfg: Mapping[str, Any], split: str) -> Split:
    size = int(cfg["train_size"] if split == "train" else cfg["test_size"])
    return synthetic.actions_split(split, size, seed=int(cfg["seed"]), num_frames=int(cfg["num_frames"]),
                                   height=int(cfg["height"]), width=int(cfg["width"]),
                                   camera_pan=bool(cfg["camera_pan"]))


def _synthetic_surveillance(cfg: Mapping[str, Any], split: str) -> Split:
    size = int(cfg["train_size"] if split == "train" else cfg["test_size"])
    return synthetic.surveillance_split(split, size, seed=int(cfg["seed"]), num_frames=int(cfg["num_frames"]),
                                        height=int(cfg["height"]), width=int(cfg["width"]))


LOADERS: dict[str, Callable[[Mapping[str, Any], str], Split]] = {
    "synthetic_actions": _synthetic_actions,
    "synthetic_surveillance": _synthetic_surveillance,
}

# What each dataset's examples hold, for reports and model heads.
NUM_CLASSES = {"synthetic_actions": len(synthetic.ACTIONS)}
ATTRIBUTES = {"synthetic_actions": synthetic.PRIVACY_ATTRIBUTES}


def load_split(cfg: Mapping[str, Any], split: str) -> Split:
    """Loads one split ("train", "val" or "test") of the dataset named by `cfg["name"]`."""
    name = cfg["name"]
    if name not in LOADERS:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(sorted(LOADERS))}")
    data = LOADERS[name](cfg, split)
    if not data or len(next(iter(data.values()))) == 0:
        raise ValueError(f"dataset {name!r} split {split!r} is empty")
    return data
