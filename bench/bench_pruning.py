"""Pruned-inference speed of the dual-token video ViT: wall-clock speedup against the FLOP ratio (issue 3, method A).

The jitted eval-mode forward pass `DualViT.__call__(clips, keep_rates=(r, r, r), fuse=...)` is timed with the same
keep rate r at each pruning block (default blocks 3, 6, 9 of 12) for r in {1.0, 0.9, 0.7, 0.5}, against the
unpruned model (r = 1.0), at each batch size. Next to each measured speedup t(1.0) / t(r) stands the FLOP ratio
`flops_per_clip(keep 1.0) / flops_per_clip(keep r)` of `anonvid.pruning`, and their quotient, the *efficiency*
(issue 3's target: efficiency >= 0.8, i.e. the speedup is at least 80% of the FLOP ratio). With fusion on
(EViT, the default) each pruning block also builds a fused token; `--fuse on,off` times both.

Method: one model (random weights; speed does not depend on them), one set of random clips per batch size
(already on the device). Every (keep rate, fusion) variant is its own jitted program of `(params, clips)`,
compiled and called once before timing (compilation excluded); the variants of one batch size are then timed in
interleaved repetitions, each call ending in `block_until_ready`. Reported: the median and the minimum over
repetitions; speedups are ratios of medians (and of minima). XLA:CPU uses all cores the process may run on.

Default size (fits a shared 2-core CPU in a few minutes): ViT-S width (D 384, 6 heads, depth 12) on 16×112²
clips with 2×16×16 tubelets, i.e. 8×7×7 = 392 tubelets + 2 CLS tokens.

Usage:
  python -m bench.bench_pruning [--variant small] [--frames 16] [--size 112] [--batches 1,32]
                                [--keep-rates 1.0,0.9,0.7,0.5] [--fuse on] [--reps 3] [--glibc-reuse]
                                [--out results.json]
"""
from __future__ import annotations

import argparse
import dataclasses
import sys

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from anonvid import compile_cache, pruning
from anonvid.models.dual_vit import DualViT
from anonvid.models.registry import build_model
from bench import timing

NUM_CLASSES = 51  # HMDB51; the heads are a negligible part of the work
TARGET_EFFICIENCY = 0.8


def build(variant: str, frames: int, size: int, seed: int = 0) -> DualViT:
    return build_model("dual_vit", NUM_CLASSES, kwargs={"variant": variant, "num_frames": frames,
                                                        "image_size": (size, size)}, seed=seed)


def make_forward(graphdef, keep_rates: tuple[float, ...], fuse: bool):
    """A jitted eval-mode forward `(params, clips) -> outputs` with the pruning plan fixed at trace time."""

    def forward(params, clips):
        model = nnx.merge(graphdef, params)
        outputs, aux = model(clips, keep_rates=keep_rates, fuse=fuse)
        return outputs, aux["kept_ids"]

    return jax.jit(forward)


def variant_name(rate: float, fuse: bool) -> str:
    return f"keep {rate:g}" + ("" if rate == 1.0 else (" fused" if fuse else " unfused"))


def bench_batch(model: DualViT, batch: int, rates: list[float], fuses: list[bool], reps: int,
                seed: int = 0) -> list[dict]:
    """Times every (rate, fuse) variant at one batch size; returns one row per variant."""
    cfg = model.config
    n_blocks = len(cfg.prune_blocks)
    graphdef, params = nnx.split(model)
    clips = jax.device_put(jnp.asarray(np.random.default_rng(seed).random(
        (batch, cfg.num_frames, *cfg.image_size, 3), dtype=np.float32)))
    variants = {}
    for rate in rates:
        for fuse in ([True] if rate == 1.0 else fuses):  # keep 1.0 prunes nothing: fusion changes nothing
            fwd = make_forward(graphdef, (rate,) * n_blocks, fuse)
            variants[variant_name(rate, fuse)] = (rate, fuse, fwd)
    runners = {name: (lambda f=fwd: jax.block_until_ready(f(params, clips))) for name, (_, _, fwd) in
               variants.items()}
    print(f"  batch {batch}: compiling and warming up {len(runners)} programs ...", flush=True)
    times, cpu = timing.interleaved_times(runners, reps, progress=lambda m: print(m, flush=True))
    base_name = variant_name(1.0, True)
    base = timing.summary(times[base_name])
    flops_base = pruning.flops_per_clip(cfg, (1.0,) * n_blocks)
    rows = []
    for name, (rate, fuse, _) in variants.items():
        s = timing.summary(times[name])
        flops = pruning.flops_per_clip(dataclasses.replace(cfg, fuse=fuse), (rate,) * n_blocks)
        flop_ratio = flops_base / flops
        speedup = base["median"] / s["median"]
        counts = pruning.kept_counts(cfg.num_tubelets, (rate,) * n_blocks)
        rows.append({
            "batch": batch, "keep_rate": rate, "fuse": fuse, "tubelets_after_stages": list(counts),
            "gflop_per_clip": flops / 1e9, "flop_ratio": flop_ratio,
            "time_s": s, "times_s": times[name], "cpu_s": timing.summary(cpu[name]),
            "speedup_median": speedup, "speedup_min": base["min"] / s["min"],
            "efficiency": speedup / flop_ratio, "achieved_gflops": flops * batch / s["median"] / 1e9,
            "target_met": None if rate == 1.0 else bool(speedup >= TARGET_EFFICIENCY * flop_ratio),
        })
    return rows


def markdown(rows: list[dict], prune_blocks: tuple[int, ...] = (3, 6, 9)) -> str:
    after = "/".join(map(str, prune_blocks))
    lines = [(f"| batch | keep rate | fusion | tubelets after blocks {after} | GFLOP/clip | FLOP ratio | median ms | "
              "min ms | speedup (median) | speedup (min) | speedup / FLOP ratio | GFLOP/s |"),
             "|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        unpruned = r["keep_rate"] == 1.0
        lines.append(
            f"| {r['batch']} | {r['keep_rate']:g} | {'—' if unpruned else ('on' if r['fuse'] else 'off')} | "
            f"{'/'.join(map(str, r['tubelets_after_stages']))} | {r['gflop_per_clip']:.2f} | "
            f"{r['flop_ratio']:.3f} | {r['time_s']['median'] * 1e3:.0f} | {r['time_s']['min'] * 1e3:.0f} | "
            f"{r['speedup_median']:.3f}× | {r['speedup_min']:.3f}× | "
            f"{'—' if unpruned else format(r['efficiency'], '.2f')} | {r['achieved_gflops']:.0f} |")
    return "\n".join(lines)


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variant", default="small", help="DualViT variant (tiny, small, base)")
    parser.add_argument("--frames", type=int, default=16, help="frames per clip")
    parser.add_argument("--size", type=int, default=112, help="frame height = width")
    parser.add_argument("--batches", default="1,32", help="comma list of batch sizes")
    parser.add_argument("--keep-rates", default="1.0,0.9,0.7,0.5",
                        help="comma list of keep rates, applied at every pruning block (1.0 = the baseline)")
    parser.add_argument("--fuse", default="on", help="fusion variants to time: on, off or on,off")
    parser.add_argument("--reps", type=int, default=3, help="interleaved repetitions (median and min reported)")
    timing.add_glibc_reuse_flag(parser)
    parser.add_argument("--out", help="write results as JSON here")
    args = parser.parse_args(argv)
    if args.glibc_reuse:
        timing.reexec_with_glibc_reuse("bench.bench_pruning", sys.argv[1:] if argv is None else list(argv))
    compile_cache.enable()
    rates = _floats(args.keep_rates)
    if 1.0 not in rates:
        rates = [1.0] + rates
    fuses = [{"on": True, "off": False}[v.strip()] for v in args.fuse.split(",") if v.strip()]
    batches = [int(b) for b in args.batches.split(",") if b]
    model = build(args.variant, args.frames, args.size)
    cfg = model.config
    print(f"DualViT {args.variant}: D {cfg.dim}, depth {cfg.depth}, {cfg.num_heads} heads, clip {cfg.num_frames}x"
          f"{cfg.image_size[0]}x{cfg.image_size[1]}, tubelet {cfg.tubelet} -> {cfg.num_tubelets} tubelets, "
          f"pruning blocks {cfg.prune_blocks}; {args.reps} interleaved reps", flush=True)
    rows = []
    for batch in batches:
        rows += bench_batch(model, batch, rates, fuses, args.reps)
        print(markdown([r for r in rows if r["batch"] == batch], cfg.prune_blocks), flush=True)
    table = markdown(rows, cfg.prune_blocks)
    if len(batches) > 1:
        print(table)
    result = {
        "rows": rows, "table_markdown": table,
        "config": {"variant": args.variant, "dim": cfg.dim, "depth": cfg.depth, "heads": cfg.num_heads,
                   "frames": cfg.num_frames, "size": list(cfg.image_size), "tubelet": list(cfg.tubelet),
                   "tubelets": cfg.num_tubelets, "prune_blocks": list(cfg.prune_blocks), "batches": batches,
                   "keep_rates": rates, "reps": args.reps, "target_efficiency": TARGET_EFFICIENCY},
        "environment": timing.environment(host_memory=timing.host_memory_note()),
    }
    return timing.write_result(args.out, result)


if __name__ == "__main__":
    main()
