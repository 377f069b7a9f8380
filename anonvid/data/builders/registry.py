"""Real-dataset builders by name, config strings, and `prepare` (what `anonvid data prepare` calls).

Config strings name the official split / subset and the stored frame size:

- ucf101, hmdb51, vp_ucf101, vp_hmdb51: "split1" (frames at 128x171), "split2_224x224", "split3_native", ...
- pa_hmdb51: "random60" (60/40 by video, seed 42) or "standard", with the same size suffixes;
- vispr: "vispr1" or "full" (images at 224x224), or e.g. "vispr1_112x112";
- ucsd: "ped2" / "ped1" (native size) or e.g. "ped2_256x256".
"""
from __future__ import annotations

import os
from pathlib import Path

import tensorflow_datasets as tfds

from anonvid.data.builders import action_video, base, hmdb51, pa_hmdb51, ucf101, ucsd, vispr, vp_privacy

BUILDERS: dict[str, type[base.ManualDirBuilder]] = {
    "ucf101": ucf101.Ucf101,
    "hmdb51": hmdb51.Hmdb51,
    "vp_ucf101": vp_privacy.VpUcf101,
    "vp_hmdb51": vp_privacy.VpHmdb51,
    "pa_hmdb51": pa_hmdb51.PaHmdb51,
    "vispr": vispr.Vispr,
    "ucsd": ucsd.Ucsd,
}


def default_data_dir() -> str:
    """$ANONVID_DATA_DIR, else ~/tensorflow_datasets."""
    return os.environ.get("ANONVID_DATA_DIR") or str(Path("~/tensorflow_datasets").expanduser())


def _size(text: str, name: str) -> tuple[int, int]:
    if text == "native":
        return 0, 0
    h, _, w = text.partition("x")
    if not (h.isdigit() and w.isdigit()) or int(h) < 1 or int(w) < 1:
        raise ValueError(f"cannot parse the size in config {name!r}; expected e.g. 224x224 or native")
    return int(h), int(w)


def builder_config(dataset: str, config: str | None = None) -> tfds.core.BuilderConfig:
    """The `BuilderConfig` a config string names (see the module docstring): the builder's registered one when
    it has that name (tfds refuses a custom config that shadows one), else a new one.

    Raises:
      ValueError: unknown dataset or unparsable config string (the message lists what is accepted).
    """
    cfg = _parse_config(dataset, config)
    registered = {c.name: c for c in BUILDERS[dataset].BUILDER_CONFIGS}
    return registered.get(cfg.name, cfg)


def _parse_config(dataset: str, config: str | None) -> tfds.core.BuilderConfig:
    if dataset not in BUILDERS:
        raise ValueError(f"unknown dataset {dataset!r}; known real datasets: {', '.join(sorted(BUILDERS))}")
    cls = BUILDERS[dataset]
    config = config or cls.DEFAULT_CONFIG_NAME
    base_name, _, size = config.partition("_")
    if dataset == "vispr":
        if base_name not in ("vispr1", "full"):
            raise ValueError(f"unknown vispr config {config!r}; expected vispr1 or full, optionally _HxW")
        return vispr.make_config(base_name, *(_size(size, config) if size else (224, 224)))
    if dataset == "ucsd":
        if base_name not in ucsd.OFFICIAL_COUNTS:
            raise ValueError(f"unknown ucsd config {config!r}; expected ped1 or ped2, optionally _HxW")
        return ucsd.make_config(base_name, *(_size(size, config) if size else (0, 0)))
    hw = _size(size, config) if size else action_video.DEFAULT_SIZE
    if dataset == "pa_hmdb51":
        if base_name not in pa_hmdb51.PROTOCOLS:
            raise ValueError(f"unknown pa_hmdb51 config {config!r}; expected one of {pa_hmdb51.PROTOCOLS}, "
                             "optionally _HxW or _native")
        return action_video.make_config(1, *hw, protocol=base_name)
    if not (base_name.startswith("split") and base_name[5:] in ("1", "2", "3")):
        raise ValueError(f"unknown {dataset} config {config!r}; expected split1, split2 or split3, optionally "
                         "_HxW or _native (e.g. split1_224x224)")
    return action_video.make_config(int(base_name[5:]), *hw)


def get_builder(dataset: str, config: str | None = None, *, data_dir: str | None = None,
                **kwargs) -> base.ManualDirBuilder:
    """The builder of `dataset` with the named config, reading from / writing to `data_dir`."""
    return BUILDERS[dataset](config=builder_config(dataset, config), data_dir=data_dir or default_data_dir(),
                             **kwargs)


def prepare(dataset: str, *, manual_dir: str | os.PathLike, data_dir: str | None = None, config: str | None = None,
            on_error: str = "raise", max_videos: int | None = None, force: bool = False):
    """Builds `dataset` (config string `config`) from `manual_dir` into `data_dir`; see `base.prepare`.

    Returns:
      `(builder, report)`.
    """
    cfg = builder_config(dataset, config)
    return base.prepare(BUILDERS[dataset], cfg, manual_dir=manual_dir, data_dir=data_dir or default_data_dir(),
                        on_error=on_error, max_videos=max_videos, force=force)
