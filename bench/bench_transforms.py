"""Frames per second of anonvid's minimization transforms against OpenCV and PIL doing the same work.

Workloads (uint8 frames, batches of clips):
  blur      anonvid `blur(4)` | cv2.GaussianBlur(sigma 4, replicate border) | PIL GaussianBlur(radius=4)
  ds2       anonvid `ds(2)`   | cv2.resize INTER_AREA                        | PIL Image.reduce(2)
  mask      anonvid `mask(25)`| cv2.cvtColor to grey (RGB) + cv2.threshold   | PIL convert("L") + point
  bgsub     anonvid `bgsub`   | cv2 MOG2 (one subtractor per clip) + 3x3 open/close + masked copy
for 256x256 grey and 224x224 RGB frames. RGB mask outputs are replicated to 3 channels by every library
(anonvid's output keeps the input shape).

Method: all implementations run in one process on the same frames; anonvid is jitted and warmed up and its
input is already a device array (`block_until_ready` ends each run); OpenCV gets numpy frames and PIL gets
Image objects prepared outside the timed region, and each returns its native output. Repetitions are
interleaved (anonvid, OpenCV, PIL, anonvid, ...) so that load changes on a shared machine hit all of them;
a repetition runs the batch back to back for at least 0.1 s, and each library's time is the median over
repetitions. Libraries use their default threading (OpenCV's thread
pool, XLA:CPU's intra-op threads; PIL is single threaded).

Usage:
  python -m bench.bench_transforms [--clips 8] [--frames 16] [--reps 7] [--out results.json]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import time
from typing import Callable

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import PIL
from PIL import Image, ImageFilter

from anonvid import minimize

SIGMA = 4.0
THRESHOLD = 25
FACTOR = 2
PAUSE_S = 0.02
MIN_REP_S = 0.1
SHAPES = {"256x256 grey": (256, 256, 1), "224x224 RGB": (224, 224, 3)}


def make_clips(num_clips: int, num_frames: int, shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """Textured static background, sensor noise and a bright block moving across each clip."""
    h, w, c = shape
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    background = (96 + 60 * np.sin(xx / 9.0) * np.cos(yy / 13.0))[..., None] + rng.integers(-20, 21, (h, w, c))
    clips = background[None, None] + rng.normal(0, 3, (num_clips, num_frames, h, w, c))
    side = h // 6
    for b in range(num_clips):
        y0 = rng.integers(0, h - side)
        for t in range(num_frames):
            x0 = (b * 17 + t * 6) % (w - side)
            clips[b, t, y0:y0 + side, x0:x0 + side] = 230
    return clips.clip(0, 255).astype(np.uint8)


# ---- peers ------------------------------------------------------------------------------------------------

def _frames(clips: np.ndarray) -> list[np.ndarray]:
    """Per-frame views in the layout OpenCV expects (2-D for one channel)."""
    flat = clips.reshape((-1,) + clips.shape[2:])
    return [f[..., 0] if f.shape[-1] == 1 else f for f in flat]


def cv2_blur(frames):
    return [cv2.GaussianBlur(f, (0, 0), SIGMA, borderType=cv2.BORDER_REPLICATE) for f in frames]


def cv2_area(frames):
    return [cv2.resize(f, (f.shape[1] // FACTOR, f.shape[0] // FACTOR), interpolation=cv2.INTER_AREA)
            for f in frames]


def cv2_mask(frames):
    out = []
    for f in frames:
        grey = cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) if f.ndim == 3 else f
        _, m = cv2.threshold(grey, THRESHOLD, 255, cv2.THRESH_BINARY)
        out.append(cv2.cvtColor(m, cv2.COLOR_GRAY2RGB) if f.ndim == 3 else m)
    return out


_KERNEL = np.ones((3, 3), np.uint8)


def cv2_bgsub(clips_frames, warmup: int):
    """MOG2 per clip (history = anonvid's warm-up), 3x3 open then close, background zeroed."""
    out = []
    for frames in clips_frames:
        mog = cv2.createBackgroundSubtractorMOG2(history=warmup, detectShadows=False)
        for f in frames:
            fg = mog.apply(f)
            fg = cv2.morphologyEx(cv2.morphologyEx(fg, cv2.MORPH_OPEN, _KERNEL), cv2.MORPH_CLOSE, _KERNEL)
            out.append(cv2.bitwise_and(f, f, mask=fg))
    return out


def pil_blur(images):
    return [im.filter(ImageFilter.GaussianBlur(radius=SIGMA)) for im in images]


def pil_area(images):
    return [im.reduce(FACTOR) for im in images]


def _pil_threshold(v):
    return 255 if v > THRESHOLD else 0


def pil_mask(images):
    out = []
    for im in images:
        m = (im.convert("L") if im.mode == "RGB" else im).point(_pil_threshold)
        out.append(m.convert("RGB") if im.mode == "RGB" else m)
    return out


# ---- timing -----------------------------------------------------------------------------------------------

def interleaved_medians(runners: dict[str, Callable[[], object]], reps: int) -> dict[str, float]:
    """Median wall time of one call of each runner over `reps` interleaved repetitions.

    A repetition times `k` back-to-back calls, `k` chosen per runner so that it lasts >= MIN_REP_S: a 1 ms
    call timed alone mostly measures thread wake-up after the previous library's turn.
    """
    calls = {}
    for name, run in runners.items():
        run()  # warm-up: compilation, allocator, caches
        t0 = time.perf_counter()
        run()
        calls[name] = max(1, math.ceil(MIN_REP_S / max(time.perf_counter() - t0, 1e-6)))
    times = {name: [] for name in runners}
    for _ in range(reps):
        for name, run in runners.items():
            # Let the previous library's worker threads go idle (OpenCV's and XLA's pools spin for a while
            # after a parallel region) so that no run is timed against another library's spinning threads.
            time.sleep(PAUSE_S)
            t0 = time.perf_counter()
            for _ in range(calls[name]):
                run()
            times[name].append((time.perf_counter() - t0) / calls[name])
    return {name: statistics.median(ts) for name, ts in times.items()}


def bench_shape(label: str, shape: tuple[int, int, int], num_clips: int, num_frames: int, reps: int) -> list[dict]:
    clips = make_clips(num_clips, num_frames, shape)
    n = num_clips * num_frames
    x = jax.device_put(jnp.asarray(clips))
    frames = _frames(clips)
    images = [Image.fromarray(f) for f in frames]
    clip_frames = [frames[b * num_frames:(b + 1) * num_frames] for b in range(num_clips)]
    warmup = 20

    def ours(spec):
        pipe = minimize.parse(spec)
        return lambda: pipe.apply(x).block_until_ready()

    workloads = {
        f"blur sigma {SIGMA:g}": {"anonvid": ours(f"blur({SIGMA:g})"), "OpenCV": lambda: cv2_blur(frames),
                                  "PIL": lambda: pil_blur(images)},
        f"area downsample x{FACTOR}": {"anonvid": ours(f"ds({FACTOR})"), "OpenCV": lambda: cv2_area(frames),
                                       "PIL": lambda: pil_area(images)},
        f"mask({THRESHOLD})": {"anonvid": ours(f"mask({THRESHOLD})"), "OpenCV": lambda: cv2_mask(frames),
                               "PIL": lambda: pil_mask(images)},
        "background removal": {"anonvid": ours(f"bgsub(warmup={warmup})"),
                               "OpenCV": lambda: cv2_bgsub(clip_frames, warmup)},
    }
    rows = []
    for name, runners in workloads.items():
        medians = interleaved_medians(runners, reps)
        fps = {lib: n / t for lib, t in medians.items()}
        rows.append({"workload": name, "frames": label, "fps": fps,
                     "ratio": {lib: fps["anonvid"] / v for lib, v in fps.items() if lib != "anonvid"}})
        print(f"  {label:13s} {name:22s} " + "  ".join(f"{lib} {v:9.0f} fps" for lib, v in fps.items()),
              flush=True)
    # Agreement, not speed: the blur is PIL's bit for bit, the area mean OpenCV's.
    ours_blur = np.asarray(minimize.apply(f"blur({SIGMA:g})", x)).reshape((-1,) + shape)
    pil_ref = np.stack([np.asarray(im).reshape(shape) for im in pil_blur(images[:4])])
    ours_area = np.asarray(minimize.apply(f"ds({FACTOR})", x)).reshape((n, shape[0] // 2, shape[1] // 2, -1))
    cv_ref = np.stack([a.reshape(ours_area.shape[1:]) for a in cv2_area(frames[:4])])
    checks = {"blur_max_abs_diff_vs_pil": int(np.abs(ours_blur[:4].astype(int) - pil_ref).max()),
              "area_max_abs_diff_vs_opencv": int(np.abs(ours_area[:4].astype(int) - cv_ref).max())}
    for row in rows:
        row["checks"] = checks
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| workload | frames | anonvid fps | OpenCV fps | PIL fps | anonvid/OpenCV | anonvid/PIL |",
             "|---|---|---:|---:|---:|---:|---:|"]
    def cell(d, k, fmt):
        return fmt.format(d[k]) if k in d else "—"

    for r in rows:
        f, q = r["fps"], r["ratio"]
        lines.append(f"| {r['workload']} | {r['frames']} | {f['anonvid']:.0f} | {cell(f, 'OpenCV', '{:.0f}')} | "
                     f"{cell(f, 'PIL', '{:.0f}')} | {cell(q, 'OpenCV', '{:.2f}x')} | {cell(q, 'PIL', '{:.2f}x')} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=8, help="clips per batch")
    parser.add_argument("--frames", type=int, default=16, help="frames per clip")
    parser.add_argument("--reps", type=int, default=7, help="interleaved repetitions (median reported)")
    parser.add_argument("--out", help="write results as JSON here")
    args = parser.parse_args(argv)
    print(f"{args.clips} clips x {args.frames} frames, median of {args.reps} interleaved runs", flush=True)
    rows = []
    for label, shape in SHAPES.items():
        rows += bench_shape(label, shape, args.clips, args.frames, args.reps)
    table = markdown(rows)
    print(table)
    result = {
        "rows": rows, "table_markdown": table,
        "config": {"clips": args.clips, "frames": args.frames, "reps": args.reps, "sigma": SIGMA,
                   "threshold": THRESHOLD, "factor": FACTOR},
        "environment": {"jax": jax.__version__, "opencv": cv2.__version__, "pillow": PIL.__version__,
                        "opencv_threads": cv2.getNumThreads(), "cpu_count": os.cpu_count(),
                        "load_average": os.getloadavg(), "platform": platform.platform(),
                        "device": str(jax.devices()[0])},
    }
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)
        print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
