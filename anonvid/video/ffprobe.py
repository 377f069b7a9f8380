"""The issue-level output check with FFmpeg's own `ffprobe` (an independent reader of the written files).

`compare(src, out)` checks what `anonvid anonymize` promises: same frame rate, same number of decodable frames
(or the temporally sampled count), same duration within one frame, audio present when the input had it. Used by
`bench/bench_anonymize.py` and the tests (skipped where ffprobe is not installed; `apt install ffmpeg`).
"""
from __future__ import annotations

import json
import shutil
import subprocess
from fractions import Fraction


def available() -> bool:
    """True when an `ffprobe` executable is on PATH."""
    return shutil.which("ffprobe") is not None


def summary(path: str) -> dict:
    """ffprobe's view of a file: average frame rate, decoded frame count, container duration, audio presence."""
    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_entries",
                          "stream=codec_type,avg_frame_rate,nb_read_frames:format=duration", "-of", "json", path],
                         capture_output=True, text=True, check=True)
    info = json.loads(out.stdout)
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    return {"fps": Fraction(video["avg_frame_rate"]) if video["avg_frame_rate"] != "0/0" else Fraction(0),
            "frames": int(video["nb_read_frames"]), "duration": float(info["format"]["duration"]),
            "audio": any(s["codec_type"] == "audio" for s in info["streams"])}


def compare(src: str, out: str, keep_every: int = 1) -> dict:
    """The checks, each True/False, plus both summaries (`input`, `output`).

    Args:
      src, out: the input and the anonymized file.
      keep_every: the temporal sampling stride the output was made with (frame count and rate divide by it).
    """
    a, b = summary(src), summary(out)
    frame = 1.0 / float(a["fps"]) if a["fps"] else 0.0
    return {"same_fps": b["fps"] == a["fps"] / keep_every,
            "same_frames": b["frames"] == -(-a["frames"] // keep_every),
            "same_duration": abs(a["duration"] - b["duration"]) <= keep_every * frame + 1e-6,
            "audio_kept": b["audio"] == a["audio"],
            "input": {**a, "fps": str(a["fps"])}, "output": {**b, "fps": str(b["fps"])}}
