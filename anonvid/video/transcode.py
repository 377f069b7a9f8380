"""Stream a video through a frame processor in bounded-memory chunks, keeping its timing and audio.

Memory: frames are decoded into chunks of at most `chunk_frames`, each chunk is processed and encoded before the
next is decoded, and audio packets are passed to the muxer as they arrive, so memory depends on the chunk size
and the frame size, not on the video's length (a 10-minute file needs what a 10-second one does).

Timing: every output frame carries its input frame's timestamp, so frame rate, frame count and duration are the
input's (variable frame rate included). When only every k-th frame is kept (temporal sampling), the kept frames
keep their timestamps and the stream's nominal rate becomes fps / k: the duration stays, the frames thin out.

Atomicity: the output is written to a hidden temporary file next to the destination and renamed onto it only
after the last packet is written; any failure removes the temporary file, so a destination never holds a
partial or un-anonymized video (and an existing one is left as it was).
"""
from __future__ import annotations

import dataclasses
import os
import tempfile
from fractions import Fraction
from typing import Callable

import numpy as np

from anonvid.data.video_io import VideoDecodeError
from anonvid.video import codecs
from anonvid.video.probe import VideoInfo

# `process(frames, first_index)`: uint8 (n, H, W, 3) kept frames and the input index of the first -> same shape,
# as a numpy array or a jax array still being computed (it is read only after the next chunk is dispatched)
FrameProcessor = Callable[[np.ndarray, int], np.ndarray]


@dataclasses.dataclass
class TranscodeResult:
    """What was written: output path, frames read and written, whether audio was copied or re-encoded.

    `warning` is set when the input decoded to fewer frames than its container announced (`expected_frames`):
    a truncated file still yields a valid anonymized video of the frames that exist.
    """
    path: str
    frames_in: int
    frames_out: int
    audio: str  # "copied", "re-encoded:<codec>", "dropped" or "none"
    expected_frames: int = 0
    warning: str = ""


def temporary_path(out_path: str) -> str:
    """A fresh hidden file next to `out_path` with the same extension (the container follows the extension)."""
    folder, name = os.path.split(os.path.abspath(out_path))
    stem, ext = os.path.splitext(name)
    fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=f".partial{ext}", dir=folder)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; the output gets the usual permissions
    return tmp


def transcode(info: VideoInfo, out_path: str, process: FrameProcessor, *, chunk_frames: int, keep_every: int = 1,
              audio: bool = True, video_codec: str | None = None, crf: int = 18, preset: str = "veryfast",
              on_frames: Callable[[int], None] | None = None) -> TranscodeResult:
    """Decodes `info.path`, runs `process` on chunks of kept frames, encodes them to `out_path` atomically.

    Args:
      info: the probed input (see `probe`).
      out_path: destination; its extension picks the container (see `codecs.SUPPORTED_OUTPUTS`).
      process: the anonymizer for a chunk of frames.
      chunk_frames: most frames held at once.
      keep_every: keep input frames 0, k, 2k, ... (temporal sampling); 1 keeps all.
      audio: copy (or re-encode when the container needs it) the first audio stream; False drops it.
      video_codec, crf, preset: encoder settings (see `codecs.choose`).
      on_frames: called with the number of input frames consumed, for progress bars.

    Raises:
      VideoDecodeError: the input fails to decode part-way (the destination is not touched).
      ValueError: unsupported output extension or encoder.
    """
    if chunk_frames < 1 or keep_every < 1:
        raise ValueError(f"chunk_frames and keep_every must be >= 1; got {chunk_frames}, {keep_every}")
    choice = codecs.choose(out_path, info.width, info.height, info.audio_codec if audio else None,
                           video_codec=video_codec, crf=crf, preset=preset)
    tmp = temporary_path(out_path)
    try:
        result = _transcode(info, tmp, process, choice, chunk_frames, keep_every, audio, on_frames)
        os.replace(tmp, out_path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    result.path = out_path
    return result


class _VideoWriter:
    """Encodes RGB frames with their input timestamps into one output stream."""

    def __init__(self, container, info: VideoInfo, choice: codecs.EncoderChoice, time_base: Fraction,
                 keep_every: int):
        import av

        self._av = av
        rate = info.fps / keep_every if info.fps else Fraction(25)
        self.stream = container.add_stream(choice.video_codec, rate=rate)
        self.stream.width, self.stream.height = info.width, info.height
        self.stream.pix_fmt = choice.pix_fmt
        options = dict(choice.options)
        bpp = options.pop("bits_per_pixel", None)
        if bpp is not None:
            self.stream.bit_rate = int(float(bpp) * info.width * info.height * float(rate or 25))
        self.stream.options = options
        self.stream.codec_context.time_base = time_base
        self.time_base = time_base
        self.container = container
        self.written = 0
        self._last_pts: int | None = None

    def write(self, frames: np.ndarray, pts: list[int]) -> None:
        for img, p in zip(frames, pts):
            if self._last_pts is not None and p <= self._last_pts:
                p = self._last_pts + 1  # broken input timestamps: keep them increasing, as encoders require
            self._last_pts = p
            frame = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            frame.pts, frame.time_base = p, self.time_base
            for packet in self.stream.encode(frame):
                self.container.mux(packet)
            self.written += 1

    def close(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)


class _AudioPassthrough:
    """Copies the input's audio packets, or re-encodes them when the container cannot hold the codec."""

    def __init__(self, container, in_stream, choice: codecs.EncoderChoice):
        self.container, self.copy = container, choice.copy_audio
        if self.copy:
            self.stream = container.add_stream_from_template(in_stream)
            self.label = "copied"
        else:
            layout = in_stream.codec_context.layout.name if in_stream.codec_context.layout else "stereo"
            rate = in_stream.rate or 48000
            if choice.audio_codec == "libopus" and rate not in (8000, 12000, 16000, 24000, 48000):
                rate = 48000
            self.stream = container.add_stream(choice.audio_codec, rate=rate)
            self.stream.layout = layout
            self.label = f"re-encoded:{choice.audio_codec}"

    def write(self, packet) -> None:
        if self.copy:
            if packet.dts is None:  # the demuxer's end-of-stream marker carries no data
                return
            packet.stream = self.stream
            self.container.mux(packet)
            return
        for frame in packet.decode():
            frame.pts = None  # let the encoder count samples; the input's packet timing is not the encoder's
            for out in self.stream.encode(frame):
                self.container.mux(out)

    def close(self) -> None:
        if not self.copy:
            for out in self.stream.encode():
                self.container.mux(out)


def _transcode(info: VideoInfo, tmp: str, process: FrameProcessor, choice: codecs.EncoderChoice,
               chunk_frames: int, keep_every: int, audio: bool,
               on_frames: Callable[[int], None] | None) -> TranscodeResult:
    import av

    frames_in = 0
    with av.open(info.path) as inp, av.open(tmp, mode="w") as out:
        vin = inp.streams.video[0]
        vin.thread_type = "AUTO"  # frame-threaded decoding
        ain = inp.streams.audio[0] if (audio and inp.streams.audio) else None
        in_time_base = vin.time_base or (1 / info.fps if info.fps else Fraction(1, 25))
        # AVI has no timestamps of its own, only a frame rate: its frames are counted at that rate
        out_time_base = 1 / ((info.fps or Fraction(25)) / keep_every) if out.format.name == "avi" else in_time_base
        writer = _VideoWriter(out, info, choice, out_time_base, keep_every)
        audio_out = _AudioPassthrough(out, ain, choice) if ain is not None else None
        buffer: list[np.ndarray] = []
        pts: list[int] = []
        first_index = 0
        pending: list = []  # the previous chunk's (result, pts), encoded once the next chunk is dispatched

        def write_pending() -> None:
            if pending:
                result, result_pts = pending.pop()
                writer.write(np.asarray(result), result_pts)

        def flush() -> None:
            nonlocal buffer, pts, first_index
            if not buffer:
                return
            chunk = np.stack(buffer)
            result = process(chunk, first_index)
            if tuple(result.shape) != chunk.shape or result.dtype != np.uint8:
                raise RuntimeError(f"the frame processor returned {result.dtype} {tuple(result.shape)} for "
                                   f"uint8 {chunk.shape}")
            write_pending()
            pending.append((result, pts))
            buffer, pts = [], []

        streams = [vin] + ([ain] if ain is not None else [])
        try:
            for packet in inp.demux(*streams):
                if packet.stream.type == "audio":
                    audio_out.write(packet)
                    continue
                for frame in packet.decode():
                    index = frames_in
                    frames_in += 1
                    if on_frames is not None:
                        on_frames(1)
                    if index % keep_every:
                        continue
                    if not buffer:
                        first_index = index
                    buffer.append(frame.to_ndarray(format="rgb24"))
                    seconds = frame.pts * in_time_base if frame.pts is not None else Fraction(index) / info.fps
                    pts.append(round(seconds / out_time_base))
                    if len(buffer) == chunk_frames:
                        flush()
        except av.FFmpegError as err:
            raise VideoDecodeError(f"{info.path}: decoding failed after {frames_in} frames ({err}); the file is "
                                   f"corrupt or truncated; nothing was written") from err
        flush()
        write_pending()
        if frames_in == 0:
            raise VideoDecodeError(f"{info.path}: decoded to zero frames (empty or corrupt file)")
        writer.close()
        if audio_out is not None:
            audio_out.close()
    label = "none" if not info.has_audio else ("dropped" if audio_out is None else audio_out.label)
    warning = ""
    if info.frames and frames_in < info.frames:
        warning = (f"input ended early: {frames_in} of the {info.frames} frames its container announces were "
                   f"decoded (truncated file?)")
    return TranscodeResult(path=tmp, frames_in=frames_in, frames_out=writer.written, audio=label,
                           expected_frames=info.frames, warning=warning)
