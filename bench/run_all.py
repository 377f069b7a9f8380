"""Runs every benchmark in `bench/` with its default (quick) settings and says where the results went.

Each benchmark runs in its own Python process (so that one's threads, allocator state and XLA flags cannot
affect the next) and writes JSON to `--out-dir` (default `out/bench/`, git-ignored); its console output is also
saved there as `<name>.log`. A benchmark whose optional peer library is missing (e.g. PyTorch, paretoset) is reported as
skipped, not failed. `make bench` runs this after installing the `[bench]` extra.

Usage:
  python -m bench.run_all [--out-dir out/bench] [--only pruning,dual_vit_train,penalty_step,anonymize]
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import time

# name → (module, quick arguments, the optional peer modules it needs). bench_tradeoff's own defaults include
# 10^6 rows near a front, which paretoset takes many minutes over; the quick run stops at 10^5 (pymoo is used
# only when installed).
BENCHES = {
    "transforms": ("bench.bench_transforms", (), ("cv2", "PIL")),
    "tradeoff": ("bench.bench_tradeoff", ("--sizes", "10000,100000", "--kinds", "uniform,front"), ("paretoset",)),
    "pruning": ("bench.bench_pruning", (), ()),
    "dual_vit_train": ("bench.bench_dual_vit_train", (), ("torch",)),
    "penalty_step": ("bench.bench_penalty_step", (), ("torch",)),
    # deface is timed beside it when its CLI is on PATH (it lives in its own venv: see the module docstring)
    "anonymize": ("bench.bench_anonymize", ("--reps", "2"), ("cv2",)),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out-dir", default=os.path.join("out", "bench"),
                        help="folder for the JSON results and logs")
    parser.add_argument("--only", default="",
                        help=f"comma list of benchmarks to run (default all: {', '.join(BENCHES)})")
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or list(BENCHES)
    unknown = sorted(set(names) - set(BENCHES))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; known: {', '.join(BENCHES)}")
    os.makedirs(args.out_dir, exist_ok=True)
    status = {}
    for name in names:
        module, quick, needs = BENCHES[name]
        missing = [m for m in needs if importlib.util.find_spec(m) is None]
        if missing:
            status[name] = f"skipped (not installed: {', '.join(missing)}; pip install -e '.[bench]')"
            print(f"== {name}: {status[name]}", flush=True)
            continue
        out = os.path.join(args.out_dir, f"{name}.json")
        log = os.path.join(args.out_dir, f"{name}.log")
        cmd = [sys.executable, "-m", module, *quick, "--out", out]
        print(f"== {name}: {' '.join(cmd[1:])}", flush=True)
        start = time.perf_counter()
        with open(log, "w") as f:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
            for line in proc.stdout:  # echo and keep the log
                sys.stdout.write(line)
                f.write(line)
            code = proc.wait()
        took = time.perf_counter() - start
        status[name] = (f"{out} ({took:.0f} s; log {log})" if code == 0 else
                        f"FAILED with exit code {code} after {took:.0f} s; see {log}")
    print("\nresults:")
    for name, where in status.items():
        print(f"  {name:15s} {where}")
    return 1 if any(s.startswith("FAILED") for s in status.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
