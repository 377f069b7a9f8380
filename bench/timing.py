"""Side-by-side timing helpers shared by the model benchmarks.

Runners are timed in interleaved repetitions (a, b, c, a, b, c, ...) so that load changes on a shared machine hit
all of them alike; each runner is called once untimed first (compilation, allocator, caches). A short pause before
each timed call lets the previous runner's worker threads (XLA's and PyTorch's pools spin for a while after a
parallel region) go idle, so that no call is timed against another library's spinning threads.
"""
from __future__ import annotations

import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable

PAUSE_S = 0.05


def interleaved_times(runners: dict[str, Callable[[], object]], reps: int, *, min_rep_s: float = 0.0,
                      warmup: int = 1, progress: Callable[[str], None] | None = None
                      ) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall and CPU seconds of one call of each runner, per interleaved repetition.

    Args:
      runners: name → zero-argument callable that runs the work *and waits for it* (`block_until_ready`).
      reps: timed repetitions per runner.
      min_rep_s: a repetition repeats a call back to back until it lasts at least this long (a 1 ms call timed
        alone mostly measures thread wake-up); 0 = one call per repetition.
      warmup: untimed calls per runner before timing (the first compiles).
      progress: called with a short message after each repetition (e.g. `print`).

    Returns:
      `(wall, cpu)`: name → list of `reps` per-call wall times in seconds, and name → the process CPU time (all
      threads, user + system) of the same calls. On a shared machine the wall time grows with other jobs' load;
      the CPU time much less (it still counts threads spinning at a barrier while a sibling is descheduled).
    """
    calls = {}
    for name, run in runners.items():
        for _ in range(max(warmup, 1)):
            t0 = time.perf_counter()
            run()
            dt = time.perf_counter() - t0
        calls[name] = max(1, math.ceil(min_rep_s / max(dt, 1e-6))) if min_rep_s else 1
    times: dict[str, list[float]] = {name: [] for name in runners}
    cpu: dict[str, list[float]] = {name: [] for name in runners}
    for rep in range(reps):
        for name, run in runners.items():
            time.sleep(PAUSE_S)
            c0, t0 = time.process_time(), time.perf_counter()
            for _ in range(calls[name]):
                run()
            times[name].append((time.perf_counter() - t0) / calls[name])
            cpu[name].append((time.process_time() - c0) / calls[name])
        if progress:
            progress(f"    rep {rep + 1}/{reps}: " + "  ".join(f"{n} {ts[-1] * 1e3:.0f} ms" for n, ts in times.items()))
    return times, cpu


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


# glibc malloc settings under which freed memory stays in the process: one arena, no mmap for large blocks, no
# trimming of the heap top. XLA:CPU allocates each execution's temporaries as one large block (2.26 GB for the
# ViT-S train step at batch 8); by default glibc maps it fresh and unmaps it after every execution, so every step
# page-faults it in again (551k minor faults, ~1.3 s of system time per step on the 2-core machine). PyTorch's
# many smaller tensors are recycled by glibc's heap either way. Read only at process start.
GLIBC_REUSE = "glibc.malloc.arena_max=1:glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736"


def reexec_with_glibc_reuse(module: str, argv: list[str]) -> None:
    """Restarts this benchmark (`python -m module argv`) with `GLIBC_TUNABLES=GLIBC_REUSE`, unless already set.

    The tunables are read by the dynamic loader at process start, so they cannot be switched on in-process.
    """
    if os.environ.get("GLIBC_TUNABLES") == GLIBC_REUSE:
        return
    env = dict(os.environ, GLIBC_TUNABLES=GLIBC_REUSE)
    print(f"restarting with GLIBC_TUNABLES={GLIBC_REUSE}", flush=True)
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, "-m", module, *argv], env)


def host_memory_note() -> str:
    """'glibc reuse' when this process runs under `GLIBC_REUSE`, else 'default'."""
    return "glibc reuse" if os.environ.get("GLIBC_TUNABLES") == GLIBC_REUSE else "default"


def write_result(path: str | None, result: dict) -> dict:
    """Writes a bench's result dict as JSON to `path` (if given), says where, and returns the result."""
    if path:
        with open(path, "w") as f:
            json.dump(result, f, indent=2)
        print(f"wrote {path}")
    return result


def add_glibc_reuse_flag(parser) -> None:
    """The `--glibc-reuse` option the CPU benches share (see `reexec_with_glibc_reuse`)."""
    parser.add_argument("--glibc-reuse", action="store_true",
                        help="restart under GLIBC_TUNABLES that keep freed memory in the process (bench.timing."
                             "GLIBC_REUSE): XLA:CPU's per-step temporaries are then not page-faulted in every step")


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS reports one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def xla_cpu_threads(requested: int) -> int:
    """The thread count a bench runs with: `requested`, or every core the process may use when 0.

    A non-zero request is passed to XLA:CPU through `XLA_FLAGS`, which JAX reads when its CPU backend starts
    (the first computation), so call this before anything runs on JAX.
    """
    threads = requested or usable_cores()
    if requested:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen="
                                   f"{str(threads > 1).lower()} intra_op_parallelism_threads={threads}").strip()
    return threads
