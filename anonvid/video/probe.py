"""What a video file holds (frame size, rate, length, audio), checked before anything is written.

`probe` opens a file with PyAV and decodes its first frame, so a missing, empty, truncated-at-the-header,
non-video or undecodable file is refused with one message that says which of these it is and what to do,
before the anonymizer spends time on it. `find_videos` expands the command line's files and folders.
"""
from __future__ import annotations

import dataclasses
import os
from fractions import Fraction
from pathlib import Path

from anonvid.data.video_io import VideoDecodeError

# Extensions `find_videos` picks up inside folders (files named explicitly may have any extension).
VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ts")


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    """The facts about one input video that the anonymizer needs.

    Attributes:
      path: the file.
      width, height: frame size in pixels.
      fps: average frame rate as an exact fraction (e.g. 30000/1001).
      frames: frame count from the container, or an estimate from duration x fps (0 if neither is known).
      duration: seconds (0.0 if unknown).
      video_codec: decoder name of the first video stream.
      audio_codec: decoder name of the first audio stream, None when there is none.
      audio_rate: its sample rate (0 when there is no audio).
    """
    path: str
    width: int
    height: int
    fps: Fraction
    frames: int
    duration: float
    video_codec: str
    audio_codec: str | None
    audio_rate: int = 0

    @property
    def has_audio(self) -> bool:
        return self.audio_codec is not None


def probe(path: str | os.PathLike) -> VideoInfo:
    """Reads a video's stream facts and decodes its first frame.

    Raises:
      VideoDecodeError: the file is missing, empty, not a video, or its first frame cannot be decoded; the
        message names the file and the problem.
    """
    import av

    path = Path(path)
    if not path.exists():
        raise VideoDecodeError(f"{path}: no such file")
    if path.is_dir():
        raise VideoDecodeError(f"{path}: is a folder; pass the folder itself as an input to process every video "
                               f"in it")
    if path.stat().st_size == 0:
        raise VideoDecodeError(f"{path}: the file is empty (0 bytes)")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoDecodeError(f"{path}: holds no video stream (unsupported input: give a video file "
                                       f"such as .mp4, .avi, .mkv, .mov or .webm)")
            stream = container.streams.video[0]
            first = next(container.decode(stream), None)
            if first is None:
                raise VideoDecodeError(f"{path}: the video stream decodes to zero frames (empty or corrupt file)")
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            fps = Fraction(rate) if rate else Fraction(0)
            duration = 0.0
            if stream.duration is not None and stream.time_base:
                duration = float(stream.duration * stream.time_base)
            elif container.duration:
                duration = container.duration / 1e6
            frames = int(stream.frames) or (round(duration * fps) if fps else 0)
            audio = container.streams.audio[0] if container.streams.audio else None
            return VideoInfo(
                path=str(path), width=first.width, height=first.height, fps=fps, frames=frames,
                duration=duration, video_codec=stream.codec_context.name,
                audio_codec=audio.codec_context.name if audio is not None else None,
                audio_rate=int(audio.rate or 0) if audio is not None else 0)
    except VideoDecodeError:
        raise
    except Exception as err:  # PyAV raises FFmpegError subclasses (InvalidDataError, ...) on garbage
        raise VideoDecodeError(f"{path}: not a readable video ({type(err).__name__}: {err})") from err


def find_videos(inputs: list[str]) -> list[tuple[str, str]]:
    """Expands files and folders into `(video path, path relative to its input)` pairs.

    A folder contributes every file under it (recursively, sorted) whose extension is in VIDEO_EXTENSIONS; the
    relative path lets the output folder mirror the input tree. A file is taken as given.

    Raises:
      VideoDecodeError: an input does not exist, or a folder holds no video.
    """
    found: list[tuple[str, str]] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            videos = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in VIDEO_EXTENSIONS)
            if not videos:
                raise VideoDecodeError(f"{p}: folder holds no video files (looked for "
                                       f"{', '.join(VIDEO_EXTENSIONS)})")
            found += [(str(f), str(f.relative_to(p))) for f in videos]
        elif p.exists():
            found.append((str(p), p.name))
        else:
            raise VideoDecodeError(f"{p}: no such file or folder")
    return found
