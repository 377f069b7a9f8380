"""`anonvid anonymize` throughput on real files (frames/s, peak memory) beside `deface`'s command line.

    python -m bench.bench_anonymize                         # 224x224 and 1080p test videos, 3 interleaved reps
    python -m bench.bench_anonymize --deface /path/to/deface --reps 3 --out bench_out/anonymize.json
    python -m bench.bench_anonymize --long-seconds 120      # also: memory on a long 1080p file vs a short one

Each command runs as its own process on the same input file, alternating (anonvid, deface, anonvid, ...) so that
load changes on a shared machine hit both alike. Reported per command: wall seconds (whole process: start-up,
model load and compilation included), frames/s = input frames / wall seconds, and peak resident memory of the
process (`wait4` rusage). anonvid's own per-file figure (frames/s of the decode-process-encode loop, start-up
excluded) is read from its `--summary` file.

What is compared: `anonvid minimize --ops "blur(4)"` blurs every pixel of every frame; `deface` detects faces
with its CenterFace network on every frame and blurs only the faces (its default `--replacewith blur`). They are
the two tools' default whole-file paths, not the same computation; `faces(blur=12)` (anonvid's detector pass +
face-only blur) is timed as well, which is the like-for-like pair.

Every output is checked with ffprobe when it is on PATH (same frame rate, same frame count, same duration within
one frame, audio present when the input has it).

`deface` is not an anonvid dependency (its wheel pins opencv-python, which clashes with the headless build):
install it in its own virtual environment (`python -m venv /tmp/deface && /tmp/deface/bin/pip install
deface==1.5.0`) and pass `--deface /tmp/deface/bin/deface`; without it only anonvid is timed.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

from anonvid.video import ffprobe
from bench.timing import environment

SIZES = {"224": (224, 224, 300), "1080p": (1080, 1920, 150)}  # height, width, frames (10 s / 5 s at 30 fps)
FPS = 30


def make_input(folder: str, name: str, height: int, width: int, frames: int) -> str:
    """Writes (once) an H.264 + AAC test video of the given size."""
    from anonvid.video import testclip

    path = os.path.join(folder, f"in_{name}.mp4")
    if not os.path.exists(path):
        testclip.write(path, num_frames=frames, height=height, width=width, fps=FPS)
    return path


def run_process(argv: list[str]) -> dict:
    """Runs a command; returns wall seconds, peak RSS (MiB) and exit status."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({code}):\n{err[-2000:]}")
    return {"wall_s": wall, "peak_rss_mib": usage.ru_maxrss / 1024.0}


def commands(src: str, folder: str, name: str, deface: str | None, anonvid: list[str],
             deface_scale: str | None = None) -> dict[str, tuple]:
    """name -> (argv, output path, summary path or None)."""
    cmds = {}
    for label, spec in (("anonvid blur(4)", "blur(4)"), ("anonvid faces(blur=12)", "faces(blur=12)")):
        out = os.path.join(folder, f"out_{name}_{spec.split('(')[0]}.mp4")
        summary = out + ".json"
        cmds[label] = (anonvid + ["minimize", src, "-o", out, "--ops", spec, "--overwrite", "--no-progress",
                                  "--summary", summary], out, summary)
    if deface:
        out = os.path.join(folder, f"out_{name}_deface.mp4")
        cmds["deface (CenterFace + blur faces)"] = ([deface, src, "-o", out, "--keep-audio"], out, None)
        if deface_scale:  # CenterFace on a downscaled copy, as anonvid's detector pass (640 px longest side)
            out = os.path.join(folder, f"out_{name}_deface_scaled.mp4")
            cmds[f"deface --scale {deface_scale}"] = ([deface, src, "-o", out, "--keep-audio", "--scale",
                                                       deface_scale], out, None)
    return cmds


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--sizes", default="224,1080p", help="comma list of " + ", ".join(SIZES))
    p.add_argument("--deface", default=shutil.which("deface"), help="deface executable (default: on PATH)")
    p.add_argument("--deface-scale", default=None, metavar="WxH",
                   help="also time deface with --scale WxH (its detector on a downscaled copy), e.g. 640x360")
    p.add_argument("--only", default="", help="comma list of command labels' first words to run (anonvid,deface)")
    p.add_argument("--work", default="/tmp/anonvid_bench_anonymize", help="inputs and outputs go here")
    p.add_argument("--long-seconds", type=float, default=0.0,
                   help="also run blur(4) on a 1080p file this long, for peak memory vs the short file")
    p.add_argument("--out", default=None, help="write the results as JSON here")
    args = p.parse_args(argv)
    os.makedirs(args.work, exist_ok=True)
    anonvid = [sys.executable, "-m", "anonvid.cli"]
    results = {"environment": environment(), "reps": args.reps, "sizes": {}}
    for name in args.sizes.split(","):
        height, width, frames = SIZES[name]
        src = make_input(args.work, name, height, width, frames)
        cmds = commands(src, args.work, name, args.deface, anonvid, args.deface_scale)
        if args.only:
            cmds = {k: v for k, v in cmds.items() if k.split()[0] in args.only.split(",")}
        runs: dict[str, list[dict]] = {k: [] for k in cmds}
        for rep in range(args.reps):
            for label, (cmd, _, summary) in cmds.items():
                r = run_process(cmd)
                if summary:
                    with open(summary, encoding="utf-8") as f:
                        r["loop_fps"] = json.load(f)["files"][0]["fps"]
                runs[label].append(r)
                print(f"[{name} rep {rep + 1}/{args.reps}] {label}: {r['wall_s']:.1f} s, "
                      f"{frames / r['wall_s']:.2f} frames/s, peak {r['peak_rss_mib']:.0f} MiB", flush=True)
        rows = {}
        for label, rs in runs.items():
            walls = [r["wall_s"] for r in rs]
            rows[label] = {"frames": frames, "wall_s": walls, "fps_median": frames / statistics.median(walls),
                           "fps_best": frames / min(walls),
                           "peak_rss_mib": max(r["peak_rss_mib"] for r in rs),
                           "loop_fps_median": statistics.median([r["loop_fps"] for r in rs]) if "loop_fps" in rs[0]
                           else None,
                           "ffprobe": ffprobe.compare(src, cmds[label][1]) if ffprobe.available() else None}
        results["sizes"][name] = {"height": height, "width": width, "frames": frames, "fps": FPS, "rows": rows}
    if args.long_seconds:
        height, width, _ = SIZES["1080p"]
        frames = int(args.long_seconds * FPS)
        src = make_input(args.work, f"1080p_{frames}f", height, width, frames)
        out = os.path.join(args.work, "out_long.mp4")
        r = run_process(anonvid + ["minimize", src, "-o", out, "--ops", "blur(4)", "--overwrite", "--no-progress"])
        results["long_1080p"] = {"frames": frames, **r,
                                 "ffprobe": ffprobe.compare(src, out) if ffprobe.available() else None}
        print(f"[long 1080p, {frames} frames] {r['wall_s']:.0f} s, peak {r['peak_rss_mib']:.0f} MiB", flush=True)
    print(markdown(results))
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)
    return results


def markdown(results: dict) -> str:
    """The results as a markdown table."""
    lines = ["| size | command | frames/s (median, whole process) | best | loop frames/s | peak RSS MiB | ffprobe |",
             "|---|---|---:|---:|---:|---:|---|"]
    for name, size in results["sizes"].items():
        for label, row in size["rows"].items():
            check = row["ffprobe"]
            failed = [k for k, v in (check or {}).items() if v is False]
            ok = "n/a" if check is None else ("ok" if not failed else "FAIL: " + ", ".join(failed))
            loop = f"{row['loop_fps_median']:.2f}" if row["loop_fps_median"] else "—"
            lines.append(f"| {size['width']}x{size['height']} ({size['frames']} f) | {label} | "
                         f"{row['fps_median']:.2f} | {row['fps_best']:.2f} | {loop} | {row['peak_rss_mib']:.0f} | "
                         f"{ok} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
