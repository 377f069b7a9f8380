"""Test videos with sound, written in real container formats (for tests, benchmarks and the docs' examples).

The picture is a textured background with a bright square moving across it, so every frame differs and blur,
pruning or sampling are visible; the sound is a 440 Hz tone, so the audio stream can be checked for presence
and length.
"""
from __future__ import annotations

import numpy as np


def iter_frames(num_frames: int, height: int, width: int, seed: int = 0):
    """Yields `num_frames` uint8 `(height, width, 3)` frames: a fixed random texture with a moving bright square
    (one frame at a time, so hour-long test videos need no more memory than short ones)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(max(1, height // 8) + 1, max(1, width // 8) + 1, 3), dtype=np.uint8)
    background = np.repeat(np.repeat(coarse, 8, axis=0), 8, axis=1)[:height, :width]
    side = max(2, min(height, width) // 4)
    step = max(1, width // max(1, min(num_frames, 100)))  # crosses the frame about every 100 frames
    for t in range(num_frames):
        frame = background.copy()
        x = (t * step) % max(1, width - side)
        y = (height - side) // 2
        frame[y:y + side, x:x + side] = (250, 240, 60)
        yield frame


def frames(num_frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """uint8 `(num_frames, height, width, 3)`: the frames of `iter_frames` as one array."""
    return np.stack(list(iter_frames(num_frames, height, width, seed)))


def write(path: str, *, num_frames: int = 30, height: int = 48, width: int = 64, fps: int = 25,
          audio: bool = True, codec: str = "libx264", audio_rate: int = 16000, seed: int = 0,
          video: np.ndarray | None = None, keep: bool = True) -> np.ndarray | None:
    """Writes a test video (H.264/AAC in .mp4 by default) and returns its uint8 frames as written.

    Args:
      path: output file (.mp4, .mkv, .avi ...).
      num_frames, height, width, fps: picture size and rate (ignored sizes when `video` is given).
      audio: add a mono 440 Hz AAC tone as long as the video.
      codec: video encoder (`ffv1` in .mkv is lossless).
      audio_rate: tone sample rate.
      seed: texture seed.
      video: frames to write instead of the generated ones.
      keep: return the frames; False streams them one at a time and returns None (long videos).
    """
    import av

    if video is not None:
        video = np.asarray(video, np.uint8)
        num_frames, height, width = video.shape[:3]
        source = iter(video)
    else:
        source = iter_frames(num_frames, height, width, seed)
    kept = []
    with av.open(path, mode="w") as out:
        vs = out.add_stream(codec, rate=fps)
        vs.width, vs.height = width, height
        vs.pix_fmt = "bgr0" if codec == "ffv1" else "yuv420p"
        if codec == "libx264":
            vs.options = {"crf": "10", "preset": "ultrafast"}
        a_stream = None
        if audio:
            a_stream = out.add_stream("aac", rate=audio_rate)
            a_stream.layout = "mono"
        for i, img in enumerate(source):
            if keep:
                kept.append(img)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            for packet in vs.encode(frame):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        if a_stream is not None:
            n = int(round(num_frames / fps * audio_rate))
            step = 1024
            for start in range(0, n, step):
                t = np.arange(start, min(n, start + step)) / audio_rate
                tone = (0.2 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
                frame = av.AudioFrame.from_ndarray(tone[None], format="fltp", layout="mono")
                frame.sample_rate, frame.pts = audio_rate, start
                for packet in a_stream.encode(frame):
                    out.mux(packet)
            for packet in a_stream.encode():
                out.mux(packet)
    return np.stack(kept) if keep else None
