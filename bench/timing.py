"""Side-by-side timing helpers shared by the model benchmarks.

Runners are timed in interleaved repetitions (a, b, c, a, b, c, ...) so that load changes on a shared machine hit
all of them alike; each runner is called once untimed first (compilation, allocator, caches). A short pause before
each timed call lets the previous runner's worker threads (XLA's and PyTorch's pools spin for a while after a
parallel region) go idle, so that no call is timed against another library's spinning threads.
"""
from __future__ import annotations

import math
import os
import platform
import statistics
import time
from collections.abc import Callable

PAUSE_S = 0.05


def interleaved_times(runners: dict[str, Callable[[], object]], reps: int, *, min_rep_s: float = 0.0,
                      warmup: int = 1, progress: Callable[[str], None] | None = None) -> dict[str, list[float]]:
    """Wall seconds of one call of each runner, per interleaved repetition.

    Args:
      runners: name → zero-argument callable that runs the work *and waits for it* (`block_until_ready`).
      reps: timed repetitions per runner.
      min_rep_s: a repetition repeats a call back to back until it lasts at least this long (a 1 ms call timed
        alone mostly measures thread wake-up); 0 = one call per repetition.
      warmup: untimed calls per runner before timing (the first compiles).
      progress: called with a short message after each repetition (e.g. `print`).

    Returns:
      name → list of `reps` per-call times in seconds.
    """
    calls = {}
    for name, run in runners.items():
        for _ in range(max(warmup, 1)):
            t0 = time.perf_counter()
            run()
            dt = time.perf_counter() - t0
        calls[name] = max(1, math.ceil(min_rep_s / max(dt, 1e-6))) if min_rep_s else 1
    times: dict[str, list[float]] = {name: [] for name in runners}
    for rep in range(reps):
        for name, run in runners.items():
            time.sleep(PAUSE_S)
            t0 = time.perf_counter()
            for _ in range(calls[name]):
                run()
            times[name].append((time.perf_counter() - t0) / calls[name])
        if progress:
            progress(f"    rep {rep + 1}/{reps}: " + "  ".join(f"{n} {ts[-1] * 1e3:.0f} ms" for n, ts in times.items()))
    return times


def summary(ts: list[float]) -> dict[str, float]:
    """min, median and max of a list of times (seconds)."""
    return {"min": min(ts), "median": statistics.median(ts), "max": max(ts)}


def environment(**extra) -> dict:
    """Machine facts worth recording next to a timing: cores, load average, platform, library versions."""
    import jax

    env = {"jax": jax.__version__, "device": str(jax.devices()[0]), "cpu_count": os.cpu_count(),
           "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
           "load_average": os.getloadavg(), "platform": platform.platform(),
           "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    env.update(extra)
    return env
