"""Shared machinery of the real-dataset builders: manual_dir checks, bad-input policy, build report, prepare.

Every real dataset is read from the user's local copy (`manual_dir`) in its real on-disk layout and written as
array_record by tfds, without TensorFlow. What happens with bad input:

- a missing folder or annotation/split file: `DatasetError` naming the path and what the folder should hold;
- a video listed in a split file but missing on disk, an unreadable/corrupt video, a label for a video that
  is not in the dataset: with ``on_error="raise"`` (default) a `DatasetError`; with ``on_error="skip"`` the
  item is skipped, counted per reason, and listed in the build report. Never a silent drop.

The build report ``anonvid_build.json`` is written inside the dataset folder (next to tfds' own
`dataset_info.json`): examples per split, skipped items per reason (with the first paths), the manual_dir,
`max_videos`. tfds writes a build into a temporary ``incomplete.*`` folder and renames it when complete, so a
failed build leaves no dataset; `prepare` removes stale temporary folders of killed builds and, with
``force=True``, rebuilds next to the finished dataset and swaps it in only once the new one is complete.
"""
from __future__ import annotations

import collections
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import tensorflow_datasets as tfds

REPORT_FILE = "anonvid_build.json"
INDEX_FILE = "anonvid_index.npz"  # small per-example fields (labels, frame counts) for loaders, record order
BIG_KEYS = ("video", "image", "privacy_frames", "privacy_known", "anomaly")  # read lazily / ragged
ON_ERROR = ("raise", "skip")
ZLIB = tfds.features.Encoding.ZLIB


class DatasetError(ValueError):
    """A real dataset's files are missing, malformed or inconsistent; the message says how to fix it."""


class SkipLog:
    """Counts skipped items per reason (``on_error="skip"``) or raises at the first one (``"raise"``).

    Args:
      on_error: "raise" or "skip".
      dataset: dataset name for messages.
    """

    def __init__(self, on_error: str = "raise", *, dataset: str = "dataset"):
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error={on_error!r}; expected one of {ON_ERROR}")
        self.on_error = on_error
        self.dataset = dataset
        self.counts: collections.Counter = collections.Counter()
        self.examples: dict[str, list[str]] = collections.defaultdict(list)

    def bad(self, reason: str, item: str, detail: str) -> None:
        """Reports one bad item: raises `DatasetError` (on_error="raise") or counts it (on_error="skip")."""
        if self.on_error == "raise":
            raise DatasetError(f"{self.dataset}: {reason}: {detail}. Fix the files, or build with "
                               f"on_error='skip' (`--on_error skip`) to skip such items and count them.")
        self.counts[reason] += 1
        if len(self.examples[reason]) < 20:
            self.examples[reason].append(f"{item}: {detail}")

    def summary(self) -> dict[str, Any]:
        """JSON-able summary: total, per-reason counts and up to 20 examples per reason."""
        return {"total": int(sum(self.counts.values())), "by_reason": dict(self.counts),
                "examples": {k: list(v) for k, v in self.examples.items()}}


def require_dir(path: Path, what: str, hint: str) -> Path:
    """Returns `path` if it is a directory, else raises `DatasetError` naming `what` and `hint`."""
    if not path.is_dir():
        raise DatasetError(f"{what} not found: {path} is not a directory. {hint}")
    return path


def require_file(path: Path, what: str, hint: str) -> Path:
    """Returns `path` if it is a file, else raises `DatasetError` naming `what` and `hint`."""
    if not path.is_file():
        raise DatasetError(f"{what} not found: {path}. {hint}")
    return path


def read_lines(path: Path) -> list[str]:
    """Non-empty lines of a text file, stripped (CRLF and trailing spaces are common in split files)."""
    with open(path, encoding="utf-8", errors="strict") as f:
        return [line.strip() for line in f if line.strip()]


class ManualDirBuilder(tfds.core.GeneratorBasedBuilder):
    """A tfds builder that reads a local copy (`manual_dir`), honours `on_error` / `max_videos` and writes a
    build report next to the data.

    Args:
      on_error: "raise" or "skip" (see the module docstring).
      max_videos: build at most this many examples per split (quick subsets), None for all.
      **kwargs: `tfds.core.GeneratorBasedBuilder` arguments (config, data_dir, ...).
    """

    def __init__(self, *, on_error: str = "raise", max_videos: int | None = None,
                 file_format: str | None = "array_record", **kwargs):
        super().__init__(file_format=file_format, **kwargs)
        self.skips = SkipLog(on_error, dataset=self.name)
        if max_videos is not None and int(max_videos) < 1:
            raise ValueError(f"max_videos={max_videos} must be >= 1 (or None for all)")
        self.max_videos = None if max_videos is None else int(max_videos)
        self._manual_dir: Path | None = None
        self._split_counts: dict[str, int] = {}
        self._index: dict[str, dict[str, list]] = {}

    # Subclasses implement `_splits(manual_dir) -> {split: items}` and `_example(item) -> dict | None`.
    def _splits(self, manual_dir: Path) -> dict[str, list[Any]]:
        raise NotImplementedError

    def _example(self, item: Any, split: str) -> tuple[str, dict] | None:
        raise NotImplementedError

    def _split_generators(self, dl_manager):
        try:
            self._manual_dir = Path(dl_manager.manual_dir)
        except AssertionError as err:  # tfds: not given, missing or empty
            raise DatasetError(f"{self.name}: {err}") from None
        splits = self._splits(self._manual_dir)
        return {name: self._generate_examples(name, items) for name, items in splits.items()}

    def _generate_examples(self, split: str, items: Iterable[Any]):
        written = 0
        for item in items:
            if self.max_videos is not None and written >= self.max_videos:
                break
            out = self._example(item, split)
            if out is None:
                continue  # counted in self.skips by _example
            key, example = out
            example["index"] = written
            self._record_index(split, example)
            yield key, example
            written += 1
        if written == 0:
            first = [v[0] for v in self.skips.examples.values()]
            raise DatasetError(f"{self.name}: split {split!r} has no examples; skipped so far: "
                               f"{dict(self.skips.counts)} (e.g. {first}). Check manual_dir "
                               f"{self._manual_dir}: {self.MANUAL_DOWNLOAD_INSTRUCTIONS}")
        self._split_counts[split] = written

    def _record_index(self, split: str, example: dict) -> None:
        """Keeps the small fields of each written example (and ragged per-frame labels with offsets)."""
        rows = self._index.setdefault(split, {})
        for k, v in example.items():
            if k in ("video", "image"):
                rows.setdefault("num_frames", []).append(len(v) if k == "video" else 1)
            elif k in BIG_KEYS:
                rows.setdefault(k, []).append(np.asarray(v))
            else:
                rows.setdefault(k, []).append(v)

    def _write_index(self, path: str) -> None:
        arrays = {}
        for split, rows in self._index.items():
            for k, values in rows.items():
                if k in BIG_KEYS:  # ragged per-frame arrays: concatenated, with offsets
                    arrays[f"{split}/{k}"] = np.concatenate(values)
                    arrays[f"{split}/{k}_offsets"] = np.cumsum([0] + [len(v) for v in values])
                else:
                    arrays[f"{split}/{k}"] = np.asarray(values)
        np.savez(path, **arrays)

    def _download_and_prepare(self, dl_manager, download_config=None):
        result = super()._download_and_prepare(dl_manager, download_config=download_config)
        # Runs inside tfds' temporary build folder: the report is renamed into place with the data.
        report = {"dataset": self.name, "config": self.builder_config.name, "version": str(self.version),
                  "manual_dir": str(self._manual_dir), "on_error": self.skips.on_error,
                  "max_videos": self.max_videos, "examples": dict(self._split_counts),
                  "skipped": self.skips.summary()}
        with open(os.path.join(self.data_dir, REPORT_FILE), "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)
        self._write_index(os.path.join(self.data_dir, INDEX_FILE))
        return result


def read_report(builder: tfds.core.DatasetBuilder) -> dict[str, Any] | None:
    """The build report of a prepared dataset, or None if it has none."""
    path = Path(builder.data_path) / REPORT_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def _stale_temp_dirs(data_path: Path) -> list[Path]:
    parent = data_path.parent
    if not parent.is_dir():
        return []
    return [p for p in parent.iterdir() if p.is_dir() and p.name.startswith("incomplete.")
            and p.name.endswith(data_path.name)]


def prepare(builder_cls: type[ManualDirBuilder], config: Any, *, manual_dir: str | os.PathLike,
            data_dir: str | os.PathLike, on_error: str = "raise", max_videos: int | None = None,
            force: bool = False) -> tuple[ManualDirBuilder, dict[str, Any]]:
    """Builds one dataset config from `manual_dir` into `data_dir` (once) and returns it with its report.

    Args:
      builder_cls: a `ManualDirBuilder` subclass.
      config: config name or `BuilderConfig`.
      manual_dir: the user's local copy of the dataset.
      data_dir: TFDS data directory to write to.
      on_error: "raise" or "skip".
      max_videos: at most this many examples per split (quick subsets).
      force: rebuild even if the dataset exists; the old one is replaced only after the new build finished.

    Returns:
      `(builder, report)`; report has "examples" per split, "skipped", "path" and "reused" (True if an
      existing build was opened instead of building).
    """
    data_dir = Path(data_dir).expanduser()
    manual_dir = Path(manual_dir).expanduser()
    if not manual_dir.is_dir():
        raise DatasetError(f"manual_dir {manual_dir} is not a directory: point --manual_dir at your local copy "
                           f"of {builder_cls.name} ({builder_cls.MANUAL_DOWNLOAD_INSTRUCTIONS.strip()})")
    kwargs = dict(config=config, on_error=on_error, max_videos=max_videos)
    builder = builder_cls(data_dir=str(data_dir), **kwargs)
    target = Path(builder.data_path)
    for stale in _stale_temp_dirs(target):  # a killed build leaves tfds' temporary folder behind
        shutil.rmtree(stale, ignore_errors=True)
    dl_config = tfds.download.DownloadConfig(manual_dir=str(manual_dir))
    if target.exists() and not force:
        report = read_report(builder) or {}
        if report.get("max_videos") != max_videos and report:
            raise DatasetError(f"{target} was built with max_videos={report.get('max_videos')}, not {max_videos}; "
                               f"rebuild it with --force (the finished one stays until the new one is complete)")
        return builder, {**report, "path": str(target), "reused": True}
    if target.exists():
        side = data_dir / f".rebuild-{uuid.uuid4().hex[:8]}"
        try:
            new = builder_cls(data_dir=str(side), **kwargs)
            new.download_and_prepare(download_config=dl_config)
            backup = target.with_name(target.name + ".old")
            target.rename(backup)
            Path(new.data_path).rename(target)
            shutil.rmtree(backup, ignore_errors=True)
        finally:
            shutil.rmtree(side, ignore_errors=True)
        builder = builder_cls(data_dir=str(data_dir), **kwargs)
    else:
        builder.download_and_prepare(download_config=dl_config)
    return builder, {**(read_report(builder) or {}), "path": str(target), "reused": False}
