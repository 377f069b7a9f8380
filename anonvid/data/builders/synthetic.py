"""TFDS builders for the synthetic benchmark (`anonvid.data.synthetic`), written as array_record.

Two builders, each with size configs:

- ``synthetic_actions``: clips with action label, privacy labels and per-pixel masks; splits train/val/test.
- ``synthetic_surveillance``: long videos with frame-level anomaly labels; train (normal only) and test.

They run without TensorFlow (tfds 4.9.10): features are `Tensor`/`ClassLabel` only (the `Image`/`Video`
features and `tfds.load` need TF), the file format is array_record, and the data is read back with
`builder.as_data_source()` or `tfds.data_source("synthetic_actions/tiny", data_dir=...)`, which return
random-access sources of dicts of numpy arrays for grain. `disable_shuffling=True` keeps record i of a split
equal to clip i of `synthetic.actions_split(split, n, seed=config.seed, ...)` (each record also stores it as
``index``). Use `prepare` to build (once) and open a config in one call.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from anonvid.data import synthetic

_ZLIB = tfds.features.Encoding.ZLIB


@dataclasses.dataclass
class SyntheticConfig(tfds.core.BuilderConfig):
    """Size of the generated data.

    Attributes:
      num_frames, height, width: clip (or video) shape.
      splits: number of clips (videos) per split name.
      seed: dataset seed (each split draws from its own stream, see `synthetic.split_seed`).
      camera_pan: actions mode only, whether the camera pans.
    """

    num_frames: int = 16
    height: int = 64
    width: int = 64
    splits: tuple[tuple[str, int], ...] = (("train", 2000), ("val", 400), ("test", 400))
    seed: int = 0
    camera_pan: bool = True


class SyntheticActions(tfds.core.GeneratorBasedBuilder):
    """Synthetic action clips with privacy attributes and per-pixel ground truth."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [
        SyntheticConfig(name="tiny", description="8x32x32 clips; 64/16/16 clips (tests).", num_frames=8,
                        height=32, width=32, splits=(("train", 64), ("val", 16), ("test", 16))),
        SyntheticConfig(name="small", description="8x32x32 clips; 2000/400/400 clips (CPU smoke runs).",
                        num_frames=8, height=32, width=32),
        SyntheticConfig(name="default", description="16x64x64 clips; 2000/400/400 clips."),
    ]
    DEFAULT_CONFIG_NAME = "default"

    def __init__(self, *, file_format: str | None = "array_record", **kwargs):
        super().__init__(file_format=file_format, **kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        c = self.builder_config
        t, h, w = c.num_frames, c.height, c.width
        return tfds.core.DatasetInfo(
            builder=self,
            description=__doc__,
            features=tfds.features.FeaturesDict({
                "video": tfds.features.Tensor(shape=(t, h, w, 3), dtype=np.uint8, encoding=_ZLIB),
                "action": tfds.features.ClassLabel(names=synthetic.ACTIONS),
                "privacy": tfds.features.Tensor(shape=(len(synthetic.PRIVACY_ATTRIBUTES),), dtype=np.int32),
                "privacy_mask": tfds.features.Tensor(shape=(t, h, w), dtype=np.uint8, encoding=_ZLIB),
                "action_mask": tfds.features.Tensor(shape=(t, h, w), dtype=np.uint8, encoding=_ZLIB),
                "index": tfds.features.Scalar(dtype=np.int64),
            }),
            supervised_keys=("video", "action"),
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download
        return {split: self._generate_examples(split, n) for split, n in self.builder_config.splits}

    def _generate_examples(self, split: str, num_clips: int):
        c = self.builder_config
        chunks = synthetic.iter_action_chunks(num_clips, seed=synthetic.split_seed(c.seed, split, "actions"),
                                              num_frames=c.num_frames, height=c.height, width=c.width,
                                              camera_pan=c.camera_pan)
        index = 0
        for chunk in chunks:
            for i in range(len(chunk["action"])):
                yield index, {"index": index, **{k: v[i] for k, v in chunk.items()}}
                index += 1


class SyntheticSurveillance(tfds.core.GeneratorBasedBuilder):
    """Synthetic fixed-camera videos with frame-level anomaly labels (train split normal-only)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [
        SyntheticConfig(name="tiny", description="4+4 videos of 40 frames, 32x32 (tests).", num_frames=40,
                        height=32, width=32, splits=(("train", 4), ("test", 4))),
        SyntheticConfig(name="default", description="16+12 videos of 200 frames, 64x64.", num_frames=200,
                        splits=(("train", 16), ("test", 12))),
    ]
    DEFAULT_CONFIG_NAME = "default"

    def __init__(self, *, file_format: str | None = "array_record", **kwargs):
        super().__init__(file_format=file_format, **kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        c = self.builder_config
        f, h, w = c.num_frames, c.height, c.width
        return tfds.core.DatasetInfo(
            builder=self,
            description=__doc__,
            features=tfds.features.FeaturesDict({
                "video": tfds.features.Tensor(shape=(f, h, w, 3), dtype=np.uint8, encoding=_ZLIB),
                "anomaly": tfds.features.Tensor(shape=(f,), dtype=np.uint8),
                "anomaly_type": tfds.features.Tensor(shape=(f,), dtype=np.uint8),
                "anomaly_mask": tfds.features.Tensor(shape=(f, h, w), dtype=np.uint8, encoding=_ZLIB),
                "privacy_mask": tfds.features.Tensor(shape=(f, h, w), dtype=np.uint8, encoding=_ZLIB),
                "index": tfds.features.Scalar(dtype=np.int64),
            }),
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager):
        del dl_manager
        return {split: self._generate_examples(split, n) for split, n in self.builder_config.splits}

    def _generate_examples(self, split: str, num_videos: int):
        c = self.builder_config
        data = synthetic.surveillance_split(split, num_videos, seed=c.seed, num_frames=c.num_frames,
                                            height=c.height, width=c.width)
        for i in range(num_videos):
            yield i, {"index": i, **{k: v[i] for k, v in data.items()}}


BUILDERS = {"actions": SyntheticActions, "surveillance": SyntheticSurveillance}


def prepare(mode: str = "actions", config: str = "tiny", *, data_dir: str) -> dict:
    """Builds a synthetic dataset into `data_dir` if it is not there yet and opens it without TensorFlow.

    Args:
      mode: 'actions' or 'surveillance'.
      config: builder config name (see the builders' BUILDER_CONFIGS).
      data_dir: TFDS data directory.

    Returns:
      dict split name -> random-access data source (len, [i] -> dict of numpy arrays).
    """
    if mode not in BUILDERS:
        raise ValueError(f"unknown synthetic mode {mode!r}; expected one of {sorted(BUILDERS)}")
    names = [c.name for c in BUILDERS[mode].BUILDER_CONFIGS]
    if config not in names:
        raise ValueError(f"unknown config {config!r} for synthetic {mode}; expected one of {names}")
    builder = BUILDERS[mode](config=config, data_dir=data_dir)
    builder.download_and_prepare()
    return builder.as_data_source()
