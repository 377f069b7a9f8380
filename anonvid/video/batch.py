"""Anonymize many video files: output paths, up-front checks, progress bars, one processor per file.

Every input is probed before anything is written, so a missing, empty, corrupt or unsupported file stops the run
with one message per bad file and no output (unless `keep_going`, which skips them and reports them at the end).
"""
from __future__ import annotations

import dataclasses
import os
import sys
import time
from typing import Callable

from anonvid.data.video_io import VideoDecodeError
from anonvid.video import codecs, transcode
from anonvid.video.probe import VideoInfo, find_videos, probe
from anonvid.video.transcode import FrameProcessor


@dataclasses.dataclass(frozen=True)
class Job:
    """One input video and where its anonymized version goes."""
    info: VideoInfo
    out_path: str


@dataclasses.dataclass(frozen=True)
class FilePlan:
    """How one file is processed: the processor, its chunk size, and the temporal sampling stride."""
    process: FrameProcessor
    chunk_frames: int
    keep_every: int = 1


class BatchError(ValueError):
    """Inputs or outputs that cannot be processed; the message lists every problem."""


def plan_outputs(inputs: list[str], output: str, *, overwrite: bool = False) -> list[tuple[str, str]]:
    """Pairs each input video with its output path.

    One input file and an output with a video extension: that file. Otherwise `output` is a folder that mirrors
    the inputs (folder inputs keep their relative paths); each file keeps its extension when anonvid can write
    it, else becomes .mp4.

    Raises:
      BatchError: an input is missing or a folder holds no video; an output would overwrite an input, would be
        written twice, or exists and `overwrite` is False.
    """
    try:
        videos = find_videos(inputs)
    except VideoDecodeError as err:
        raise BatchError(str(err)) from err
    single = len(videos) == 1 and not os.path.isdir(inputs[0])
    if single and os.path.splitext(output)[1]:
        codecs.output_extension(output)  # an unsupported extension is an error, not a folder name
        pairs = [(videos[0][0], output)]
    else:
        pairs = []
        for path, rel in videos:
            stem, ext = os.path.splitext(rel)
            ext = ext.lower() if ext.lower() in codecs.SUPPORTED_OUTPUTS else ".mp4"
            pairs.append((path, os.path.join(output, stem + ext)))
    problems, seen = [], set()
    inputs_real = {os.path.realpath(p) for p, _ in pairs}
    for path, out in pairs:
        real = os.path.realpath(out)
        if real in inputs_real:
            problems.append(f"{out}: the output would overwrite an input; choose another -o")
        elif real in seen:
            problems.append(f"{out}: two inputs map to this output (same relative name); process them separately")
        elif os.path.exists(out) and not overwrite:
            problems.append(f"{out}: exists; pass --overwrite to replace it")
        seen.add(real)
    if problems:
        raise BatchError("\n".join(problems))
    return pairs


def check_inputs(pairs: list[tuple[str, str]], *, keep_going: bool = False) -> tuple[list[Job], list[str]]:
    """Probes every input; returns the jobs and the problems found.

    Raises:
      BatchError: some input cannot be read and `keep_going` is False (all problems in one message).
    """
    jobs, problems = [], []
    for path, out in pairs:
        try:
            jobs.append(Job(probe(path), out))
        except VideoDecodeError as err:
            problems.append(str(err))
    if problems and not keep_going:
        raise BatchError("\n".join(problems) + "\nnothing was written" +
                         (" (--keep-going skips unreadable inputs)" if len(pairs) > 1 else ""))
    return jobs, problems


def run(jobs: list[Job], make_plan: Callable[[VideoInfo], FilePlan], *, audio: bool = True, progress: bool = True,
        keep_going: bool = False, video_codec: str | None = None, crf: int = 18, preset: str = "veryfast",
        log: Callable[[str], None] | None = None) -> tuple[list[dict], list[str]]:
    """Anonymizes every job; returns per-file summaries and the failures (when `keep_going`).

    A per-file progress bar counts decoded frames; an overall bar counts files and frames.
    """
    from tqdm.auto import tqdm

    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    total_frames = sum(j.info.frames for j in jobs) or None
    overall = tqdm(total=total_frames, unit="frame", desc=f"all {len(jobs)} file(s)", disable=not progress,
                   position=0, dynamic_ncols=True)
    summaries, failures = [], []
    try:
        for i, job in enumerate(jobs):
            name = os.path.basename(job.info.path)
            bar = tqdm(total=job.info.frames or None, unit="frame", desc=f"[{i + 1}/{len(jobs)}] {name}",
                       disable=not progress, position=1, leave=False, dynamic_ncols=True)

            def advance(n: int, bar=bar) -> None:
                bar.update(n)
                overall.update(n)

            os.makedirs(os.path.dirname(os.path.abspath(job.out_path)), exist_ok=True)
            start = time.perf_counter()
            try:
                plan = make_plan(job.info)
                result = transcode.transcode(job.info, job.out_path, plan.process, chunk_frames=plan.chunk_frames,
                                             keep_every=plan.keep_every, audio=audio, video_codec=video_codec,
                                             crf=crf, preset=preset, on_frames=advance)
            except (VideoDecodeError, ValueError) as err:
                if not keep_going:
                    raise
                failures.append(f"{job.info.path}: {err}")
                continue
            finally:
                bar.close()
            seconds = time.perf_counter() - start
            summaries.append({"input": job.info.path, "output": result.path, "frames_in": result.frames_in,
                              "frames_out": result.frames_out, "audio": result.audio, "seconds": round(seconds, 2),
                              "fps": round(result.frames_in / seconds, 2) if seconds > 0 else None,
                              "warning": result.warning})
            if result.warning:
                log(f"warning: {job.info.path}: {result.warning}")
            log(f"{job.info.path} -> {result.path}: {result.frames_out}/{result.frames_in} frames, "
                f"audio {result.audio}, {summaries[-1]['fps']} frames/s")
    finally:
        overall.close()
    return summaries, failures
