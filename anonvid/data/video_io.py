"""Video and frame I/O for the real-dataset builders: PyAV decoding/encoding, resizing, clip sampling.

Decoding goes through PyAV (FFmpeg); frames come back as uint8 RGB `(F, H, W, 3)`. Resizing uses PIL bilinear
(antialiased when shrinking), frame by frame. Clip sampling follows the papers (METHODS.md A/C: 16 frames
with stride 2), with these exact rules (`clip_indices`):

- span(stride) = (clip_len - 1) * stride + 1 frames.
- Short videos: while stride > 1 and span(stride) > num_frames, stride //= 2 (16 frames at stride 2 need 31
  frames; a 20-frame video is sampled at stride 1).
- If even stride 1 does not fit (num_frames < clip_len), the clip takes every frame once and repeats the last
  frame to fill clip_len (no frame is invented).
- ``random``: start uniform in [0, num_frames - span]; ``center``: the middle window; ``uniform``: K windows
  with starts evenly spaced over [0, num_frames - span] (multi-clip evaluation; K = 1 is the centre window).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

SAMPLING_MODES = ("random", "center", "uniform")


class VideoDecodeError(RuntimeError):
    """A video file could not be opened or decoded (missing, corrupt, no video stream, zero frames)."""


def read_video(path: str | os.PathLike, *, size: tuple[int, int] | None = None,
               max_frames: int | None = None) -> tuple[np.ndarray, float]:
    """Decodes every frame of a video file with PyAV.

    Args:
      path: the video file (.avi, .mp4, ...).
      size: optional (height, width) to resize every frame to (PIL bilinear); None keeps the native size.
      max_frames: optional cap on the number of decoded frames (from the start).

    Returns:
      `(frames, fps)`: uint8 `(F, H, W, 3)` RGB frames, F >= 1, and the stream's frame rate (0.0 if unknown).

    Raises:
      VideoDecodeError: the file is missing, unreadable, has no video stream or decodes to zero frames.
    """
    import av  # imported here so that parsing-only users do not pay for FFmpeg

    path = Path(path)
    if not path.is_file():
        raise VideoDecodeError(f"video file not found: {path}")
    frames = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoDecodeError(f"{path} has no video stream")
            stream = container.streams.video[0]
            fps = float(stream.average_rate) if stream.average_rate else 0.0
            for img in _decode_rgb(container, stream):
                frames.append(img)
                if max_frames and len(frames) >= max_frames:
                    break
    except VideoDecodeError:
        raise
    except Exception as err:  # PyAV raises FFmpegError subclasses, and OSError/ValueError on garbage
        raise VideoDecodeError(f"cannot decode {path}: {type(err).__name__}: {err}") from err
    if not frames:
        raise VideoDecodeError(f"{path} decoded to zero frames (empty or corrupt file)")
    video = np.stack(frames)
    if size is not None:
        video = resize_frames(video, size)
    return video, fps


def _decode_rgb(container, stream):
    """Yields the stream's frames as uint8 RGB `(H, W, 3)` arrays, one at a time."""
    for frame in container.decode(stream):
        yield frame.to_ndarray(format="rgb24")


def iter_frames(path: str | os.PathLike):
    """Decodes a video's frames one at a time as uint8 RGB `(H, W, 3)` (bounded memory for any length).

    The file is expected to have been checked already (e.g. by `anonvid.video.probe.probe`); PyAV errors pass
    through.
    """
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame-threaded decoding
        yield from _decode_rgb(container, stream)


def write_video(path: str | os.PathLike, frames: np.ndarray, *, fps: int = 25, codec: str = "mpeg4") -> None:
    """Encodes uint8 RGB frames `(F, H, W, 3)` into a video file with PyAV (for fixtures and exports).

    Args:
      path: output file; the container follows the extension (.avi, .mp4).
      frames: uint8 (F, H, W, 3); H and W must be even for yuv420p codecs.
      fps: frame rate.
      codec: FFmpeg encoder name ("mpeg4" is what UCF101/HMDB51-era .avi files hold; "ffv1" is lossless).
    """
    import av

    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"write_video expects uint8 (F, H, W, 3); got {frames.dtype} {frames.shape}")
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p" if codec != "ffv1" else "bgr0"
        for img in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def read_image(path: str | os.PathLike, *, size: tuple[int, int] | None = None) -> np.ndarray:
    """Reads an image (jpg/png/gif/tif; first frame of an animation) as uint8 RGB `(H, W, 3)`.

    Raises:
      VideoDecodeError: missing or unreadable file.
    """
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise VideoDecodeError(f"image file not found: {path}")
    try:
        with Image.open(path) as img:
            img.seek(0)
            img = img.convert("RGB")
            if size is not None:
                img = img.resize((int(size[1]), int(size[0])), Image.BILINEAR)
            return np.asarray(img, dtype=np.uint8).copy()
    except Exception as err:
        raise VideoDecodeError(f"cannot read image {path}: {type(err).__name__}: {err}") from err


def resize_frames(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resizes uint8 frames `(F, H, W, C)` (C 1 or 3) to `size` = (height, width) with PIL bilinear."""
    from PIL import Image

    frames = np.asarray(frames)
    h, w = int(size[0]), int(size[1])
    if h <= 0 or w <= 0:
        raise ValueError(f"resize size must be positive (height, width); got {size}")
    if frames.shape[1:3] == (h, w):
        return frames
    grey = frames.shape[-1] == 1
    out = np.empty((len(frames), h, w, frames.shape[-1]), np.uint8)
    for i, f in enumerate(frames):
        img = Image.fromarray(f[..., 0] if grey else f).resize((w, h), Image.BILINEAR)
        out[i] = np.asarray(img).reshape(h, w, -1)
    return out


def effective_stride(num_frames: int, clip_len: int = 16, stride: int = 2) -> int:
    """The sampling stride for a video of `num_frames`: halved while the clip span does not fit (down to 1)."""
    if clip_len < 1 or stride < 1 or num_frames < 1:
        raise ValueError(f"need clip_len, stride, num_frames >= 1; got {clip_len}, {stride}, {num_frames}")
    while stride > 1 and (clip_len - 1) * stride + 1 > num_frames:
        stride //= 2
    return stride


def clip_indices(num_frames: int, *, clip_len: int = 16, stride: int = 2, mode: str = "center",
                 num_clips: int = 1, rng: np.random.Generator | None = None) -> np.ndarray:
    """Frame indices of the clips sampled from a video (rules in the module docstring).

    Args:
      num_frames: frames in the video (>= 1).
      clip_len: frames per clip.
      stride: nominal frame stride (halved for short videos).
      mode: "random" (needs `rng`), "center" or "uniform" (`num_clips` evenly spaced windows).
      num_clips: clips to return (K); for "random" K independent starts, for "center" K copies.
      rng: numpy Generator for "random".

    Returns:
      int64 `(K, clip_len)` indices into the video's frames, each in [0, num_frames).
    """
    if mode not in SAMPLING_MODES:
        raise ValueError(f"unknown clip sampling mode {mode!r}; expected one of {SAMPLING_MODES}")
    if num_clips < 1:
        raise ValueError(f"num_clips={num_clips} must be >= 1")
    s = effective_stride(num_frames, clip_len, stride)
    span = (clip_len - 1) * s + 1
    room = max(num_frames - span, 0)
    if mode == "random":
        if rng is None:
            raise ValueError("mode='random' needs rng=np.random.default_rng(...)")
        starts = rng.integers(0, room + 1, size=num_clips)
    elif mode == "center" or num_clips == 1:
        starts = np.full(num_clips, room // 2)
    else:
        starts = np.round(np.linspace(0, room, num_clips)).astype(np.int64)
    idx = starts[:, None] + s * np.arange(clip_len)[None, :]
    return np.minimum(idx, num_frames - 1).astype(np.int64)
