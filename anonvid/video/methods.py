"""`--method prune|minimize|anonymizer` → a per-file plan (processor, chunk size, temporal stride).

Models are loaded once, here; each file gets a fresh processor (processors with temporal state, such as
background removal or the face tracker, start anew on every file).
"""
from __future__ import annotations

from typing import Callable

from anonvid.video import processors
from anonvid.video.batch import FilePlan
from anonvid.video.probe import VideoInfo

METHODS = ("minimize", "prune", "anonymizer")


def parse_size(text: str | None) -> tuple[int, int] | None:
    """`"112x112"` → (112, 112) (height x width); None stays None.

    Raises:
      ValueError: not two positive integers joined by `x`.
    """
    if text is None:
        return None
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"size {text!r} is not HEIGHTxWIDTH with positive integers, e.g. 112x112")
    return int(parts[0]), int(parts[1])


def _fit(chunk: int, info: VideoInfo, multiple: int = 1) -> int:
    """A chunk no longer than the video (rounded up to `multiple`): short clips are not padded to a long chunk."""
    if info.frames <= 0:
        return chunk
    return min(chunk, -(-info.frames // multiple) * multiple)


def make_planner(method: str, *, ops: str | None = None, checkpoint: str | None = None, fill: str = "black",
                 work_size: tuple[int, int] | None = None, chunk_frames: int | None = None,
                 detector_options: dict | None = None) -> Callable[[VideoInfo], FilePlan]:
    """Checks the method's arguments, loads its model, and returns `info -> FilePlan`.

    Args:
      method: one of METHODS.
      ops: minimization spec (method minimize).
      checkpoint: pruner run folder (prune) or exported anonymizer / penalty run folder (anonymizer).
      fill: pruned-pixel fill (prune).
      work_size: (height, width) the anonymizer runs at (None: each video's own size).
      chunk_frames: frames per chunk (None: from a pixel budget, see `processors.auto_chunk_frames`).
      detector_options: keyword arguments of `region_pass.detect_video_regions` for region ops (minimize):
        `every`, `max_side`, `progress`, ...

    Raises:
      ValueError: an unknown method, a missing or superfluous argument, or a bad spec.
      FileNotFoundError: the checkpoint folder holds no trained model.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    if method == "minimize":
        if not ops:
            raise ValueError('--method minimize needs --ops SPEC, e.g. --ops "blur(4)" or --ops "ts(5)|faces(blur=12)"')
        if checkpoint:
            raise ValueError("--checkpoint is for --method prune|anonymizer; minimization has no model")
        from anonvid import minimize

        pipeline = minimize.parse(ops)  # spec errors before any file is touched
        if pipeline.regions:
            from anonvid import regions

            regions.build_detectors(pipeline.regions)  # a missing OpenCV or unknown region, before any file
        processors.split_for_streaming(pipeline)  # op-order errors too

        def plan(info: VideoInfo) -> FilePlan:
            chunk = chunk_frames or _fit(processors.auto_chunk_frames("minimize", info.height, info.width), info)
            masks_for = None
            if pipeline.regions:
                from anonvid.video import region_pass

                masks_for = region_pass.detect_video_regions(info, pipeline.regions, **(detector_options or {}))
            proc = processors.MinimizeProcessor(pipeline, chunk_frames=chunk, masks_for=masks_for)
            return FilePlan(proc, chunk, proc.keep_every)

        return plan
    if ops:
        raise ValueError(f"--ops is for --method minimize; --method {method} takes --checkpoint")
    if not checkpoint:
        what = "a pruner run folder (anonvid train --config configs/pruning.py:...)" if method == "prune" else \
            "an exported anonymizer (anonvid train --config configs/penalty.py:...; its selected_anonymizer/)"
        raise ValueError(f"--method {method} needs --checkpoint DIR: {what}")
    if method == "prune":
        from anonvid.trainers.dual_vit import load_pruner

        model = load_pruner(checkpoint)
        clip_len = int(model.config.num_frames)

        cache: dict[int, processors.PruneProcessor] = {}  # one jitted program per chunk size, across files

        def plan(info: VideoInfo) -> FilePlan:
            frames = chunk_frames or _fit(processors.auto_chunk_frames("prune", info.height, info.width, clip_len),
                                          info, clip_len)
            clips = max(1, frames // clip_len)
            if clips not in cache:
                cache[clips] = processors.PruneProcessor(model, clips_per_chunk=clips, fill=fill)
            return FilePlan(cache[clips], cache[clips].chunk_frames)

        return plan
    from anonvid.trainers.identity import load_anonymizer

    model = load_anonymizer(checkpoint)

    cache: dict[int, processors.AnonymizerProcessor] = {}

    def plan(info: VideoInfo) -> FilePlan:
        h, w = work_size or (info.height, info.width)
        chunk = chunk_frames or _fit(processors.auto_chunk_frames("anonymizer", max(h, info.height),
                                                                  max(w, info.width)), info)
        if chunk not in cache:
            cache[chunk] = processors.AnonymizerProcessor(model, chunk_frames=chunk, work_size=work_size)
        return FilePlan(cache[chunk], chunk)

    return plan
