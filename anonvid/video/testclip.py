"""Test videos with sound, written in real container formats (for tests, benchmarks and the docs' examples).

The picture is a textured background with a bright square moving across it, so every frame differs and blur,
pruning or sampling are visible; the sound is a 440 Hz tone, so the audio stream can be checked for presence
and length.
"""
from __future__ import annotations

import numpy as np


def frames(num_frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """uint8 `(num_frames, height, width, 3)`: a fixed random texture with a moving bright square."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(max(1, height // 8) + 1, max(1, width // 8) + 1, 3), dtype=np.uint8)
    background = np.repeat(np.repeat(coarse, 8, axis=0), 8, axis=1)[:height, :width]
    side = max(2, min(height, width) // 4)
    out = np.empty((num_frames, height, width, 3), np.uint8)
    for t in range(num_frames):
        out[t] = background
        x = (t * max(1, width // max(1, num_frames))) % max(1, width - side)
        y = (height - side) // 2
        out[t, y:y + side, x:x + side] = (250, 240, 60)
    return out


def write(path: str, *, num_frames: int = 30, height: int = 48, width: int = 64, fps: int = 25,
          audio: bool = True, codec: str = "libx264", audio_rate: int = 16000, seed: int = 0,
          video: np.ndarray | None = None) -> np.ndarray:
    """Writes a test video (H.264/AAC in .mp4 by default) and returns its uint8 frames as written.

    Args:
      path: output file (.mp4, .mkv, .avi ...).
      num_frames, height, width, fps: picture size and rate (ignored sizes when `video` is given).
      audio: add a mono 440 Hz AAC tone as long as the video.
      codec: video encoder (`ffv1` in .mkv is lossless).
      audio_rate: tone sample rate.
      seed: texture seed.
      video: frames to write instead of the generated ones.
    """
    import av

    video = frames(num_frames, height, width, seed) if video is None else np.asarray(video, np.uint8)
    num_frames, height, width = video.shape[:3]
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
        for i, img in enumerate(video):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            for packet in vs.encode(frame):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        if a_stream is not None:
            n = int(round(num_frames / fps * audio_rate))
            tone = (0.2 * np.sin(2 * np.pi * 440.0 * np.arange(n) / audio_rate)).astype(np.float32)
            step = 1024
            for start in range(0, n, step):
                frame = av.AudioFrame.from_ndarray(tone[None, start:start + step], format="fltp", layout="mono")
                frame.sample_rate, frame.pts = audio_rate, start
                for packet in a_stream.encode(frame):
                    out.mux(packet)
            for packet in a_stream.encode():
                out.mux(packet)
    return video
