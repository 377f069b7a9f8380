"""Ahead-of-time check for pods: will the dual-ViT train step fit, per device, on a given mesh?

Lowers and compiles the pruner's real train step (`anonvid.trainers.dual_vit.make_train_step`: adversarial
privacy mode with the gradient-reversal ramp, clip augmentation, stochastic depth, AdamW, donated state) for a
model size, clip size, global batch, mesh and rules table, *without running it and without allocating the
parameters*: the model and optimizer state are `nnx.eval_shape` / `jax.eval_shape` shapes, placed as
`jax.ShapeDtypeStruct`s with the shardings training would give them, and the step is only
`jit(...).lower(...).compile()`d. It then prints, per device:

- parameters, optimizer state, batch and the small rest of the state (step, RNG), from the shapes and shardings;
- what the compiler reports (`compiled.memory_analysis()`): argument, output, aliased (donated), temporary
  (activations and workspace) and generated-code bytes — fields a backend leaves out print as "n/a";
- the estimated peak = arguments + (outputs − aliased) + temporaries + code, against `--device-memory-gib`,
  with a FITS / DOES NOT FIT line; and the step's FLOPs from `compiled.cost_analysis()` when available.

To check a pod slice from one machine, fake its devices on the CPU (the flag must be set before JAX starts;
`--fake-devices N` does it for you):

    python -m launch.aot_compile --fake-devices 16 --variant base --frames 16 --size 224 --batch 32 \
        --mesh data=8,model=2 --dtype bfloat16 --remat --device-memory-gib 16 --json /tmp/aot.json

Caveat: a CPU compile's temporaries are XLA:CPU's, not the accelerator's (other fusion, layouts and schedule:
on CPU `--remat` barely changes them, see docs/benchmarks.md), so read them as an estimate; the parameter,
optimizer and batch bytes are exact on any backend. On one host of the target machine the same command without
`--fake-devices`, with a mesh of that host's devices, compiles for the real backend.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

GIB = 1024 ** 3
MIB = 1024 ** 2
COMPILED_FIELDS = {  # report key: CompiledMemoryStats attribute
    "argument": "argument_size_in_bytes",
    "output": "output_size_in_bytes",
    "alias": "alias_size_in_bytes",
    "temp": "temp_size_in_bytes",
    "generated_code": "generated_code_size_in_bytes",
}


def parse_mesh(text: str) -> tuple[tuple[str, int], ...]:
    """`"data=8,model=2"` → `(("data", 8), ("model", 2))`; one size may be -1 (fill the devices)."""
    axes = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, size = part.partition("=")
        try:
            value = int(size)
        except ValueError:
            value = 0
        if not sep or not name.strip() or (value < 1 and value != -1):
            raise ValueError(f"bad --mesh entry {part!r}: write axis=size, e.g. data=8,model=2 (size >= 1 or -1)")
        axes.append((name.strip(), value))
    if not axes:
        raise ValueError("--mesh is empty: write e.g. data=8,model=2")
    return tuple(axes)


def parse_rules(text: str) -> dict[str, str | None]:
    """`"embed=data,mlp=none"` → `{"embed": "data", "mlp": None}` (overrides of the default rules table)."""
    out: dict[str, str | None] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, axis = part.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"bad --rules entry {part!r}: write logical=mesh_axis (or logical=none), "
                             f"e.g. embed=data")
        axis = axis.strip()
        out[name.strip()] = None if axis.lower() in ("", "none", "null") else axis
    return out


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    p = argparse.ArgumentParser(
        prog="python -m launch.aot_compile",
        description="Lower and compile the dual-ViT train step for a mesh without running it, and report "
                    "per-device memory (parameters, optimizer state, batch, compiled temporaries) and FLOPs.")
    p.add_argument("--variant", default="base", help="dual_vit variant: tiny, small or base (default base)")
    p.add_argument("--frames", type=int, default=16, help="clip length T (default 16)")
    p.add_argument("--size", type=int, default=224, help="square frame size H = W (default 224)")
    p.add_argument("--batch", type=int, default=32, help="global batch size (default 32)")
    p.add_argument("--mesh", default="data=-1,model=1",
                   help="mesh axes as axis=size,...; -1 fills the devices (default data=-1,model=1)")
    p.add_argument("--rules", default="",
                   help="logical-axis rule overrides, e.g. embed=data for FSDP-style parameter sharding "
                        "(logical axes: batch, embed, mlp, heads, tokens, time, conv_in, conv_out)")
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"),
                   help="compute dtype (parameters stay float32)")
    p.add_argument("--remat", action="store_true", help="rematerialise each block in the backward pass")
    p.add_argument("--prune-blocks", help="1-indexed pruning blocks, e.g. 3,6,9 (default: the variant's)")
    p.add_argument("--keep-rate", type=float, help="keep rate of every pruning block (default: the variant's)")
    p.add_argument("--num-classes", type=int, default=51, help="action classes (default 51, HMDB51)")
    p.add_argument("--num-attributes", type=int, default=5, help="privacy attributes (default 5, PA-HMDB51)")
    p.add_argument("--total-steps", type=int, default=10000, help="run length for the LR schedule (default 10000)")
    p.add_argument("--device-memory-gib", type=float, help="per-device memory budget in GiB (e.g. 16 for v5e)")
    p.add_argument("--fake-devices", type=int,
                   help="fake N CPU devices (sets XLA_FLAGS and JAX_PLATFORMS=cpu before JAX starts)")
    p.add_argument("--json", metavar="PATH", help="also write the report as JSON")
    return p


def _configure_devices(fake_devices: int | None) -> None:
    """Sets the fake-CPU-device flag before JAX is imported (it is read once, at backend start)."""
    if fake_devices is None:
        return
    if "jax" in sys.modules:  # the flag is only read when JAX starts its CPU backend
        raise RuntimeError("--fake-devices needs a fresh process (JAX is already imported here): run "
                           "`python -m launch.aot_compile ...` or set XLA_FLAGS before importing JAX")
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split()
             if not f.startswith("--xla_force_host_platform_device_count")]
    os.environ["XLA_FLAGS"] = " ".join([*flags, f"--xla_force_host_platform_device_count={fake_devices}"])
    os.environ["JAX_PLATFORMS"] = "cpu"


def train_config(args: argparse.Namespace) -> Any:
    """The pruner's training config (`anonvid.trainers.dual_vit.default_config`) at the requested size.

    The architecture comes from the variant (the default config's tiny-CPU widths are dropped); clip size,
    pruning, dtype, remat, batch, mesh and rules from the arguments. Privacy mode (adversarial), augmentation,
    optimizer and stochastic depth stay as training runs them.
    """
    from anonvid import sharding as shd
    from anonvid.models.dual_vit import VARIANTS
    from anonvid.trainers import dual_vit as trainer

    if args.variant not in VARIANTS:
        raise ValueError(f"unknown variant {args.variant!r}; known variants: {', '.join(VARIANTS)}")
    cfg = trainer.default_config()
    old = cfg.model.kwargs
    kwargs = {"variant": args.variant, "num_frames": args.frames, "image_size": (args.size, args.size),
              "lambda_priv": old.lambda_priv, "fuse": old.fuse, "temporal_strict": old.temporal_strict,
              "remat": args.remat}
    if args.prune_blocks or args.keep_rate is not None:
        blocks = tuple(VARIANTS[args.variant].get("prune_blocks", (3, 6, 9)))
        if args.prune_blocks:
            try:
                blocks = tuple(int(b) for b in args.prune_blocks.split(","))
            except ValueError:
                raise ValueError(f"--prune-blocks must be comma-separated block numbers, e.g. 3,6,9; got "
                                 f"{args.prune_blocks!r}") from None
        rate = 0.9 if args.keep_rate is None else args.keep_rate
        kwargs.update(prune_blocks=blocks, keep_rates=(rate,) * len(blocks))
    cfg.model.kwargs = kwargs
    cfg.model.dtype = args.dtype
    cfg.batch_size = cfg.eval_batch_size = args.batch
    cfg.sharding.mesh = parse_mesh(args.mesh)
    table = dict(shd.DEFAULT_RULES)
    overrides = parse_rules(args.rules)
    unknown = sorted(set(overrides) - set(table))
    if unknown:
        raise ValueError(f"--rules: unknown logical axis {unknown}; known logical axes: {sorted(table)}")
    mesh_axes = [name for name, _ in cfg.sharding.mesh]
    missing = sorted({axis for axis in overrides.values() if axis is not None} - set(mesh_axes))
    if missing:
        raise ValueError(f"--rules maps to mesh axes {missing} that the mesh {mesh_axes} does not have")
    table.update(overrides)
    cfg.sharding.rules = tuple(table.items())
    return cfg


def abstract_train_state(cfg: Any, num_classes: int, num_attributes: int, total_steps: int, mesh=None):
    """The abstract counterpart of `anonvid.trainers.dual_vit.build`: shapes and shardings, no arrays.

    Args:
      cfg: the pruner config.
      num_classes, num_attributes: head sizes.
      total_steps: run length (the optimizer's schedule).
      mesh: device mesh (default: from `cfg.sharding.mesh`, after the batch-size check).

    Returns:
      `(model_config, fns, tx, state, shardings, mesh, rules)` like `build`, where `state` holds
      `jax.ShapeDtypeStruct`s carrying the shardings `create_state` would give the real arrays.
    """
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from anonvid import sharding as shd
    from anonvid.models.registry import build_model
    from anonvid.trainers import core
    from anonvid.trainers import dual_vit as trainer

    trainer.check_config(cfg)
    mesh, rules = core.mesh_for_batches(cfg, mesh)
    kwargs = dict(cfg["model"]["kwargs"], num_attributes=num_attributes)
    model = nnx.eval_shape(lambda: build_model("dual_vit", num_classes, kwargs=kwargs, dtype=cfg["model"]["dtype"],
                                               seed=int(cfg["seed"])))
    tx = core.make_optimizer(cfg["optim"], total_steps)
    # As core.create_state, with shapes in place of arrays.
    fns, params, batch_stats = core.split_model(model)
    param_sh = shd.state_shardings(params, mesh, rules)
    stats_sh = shd.state_shardings(batch_stats, mesh, rules)
    opt_state = jax.eval_shape(tx.init, params)
    opt_sh = shd.optimizer_shardings(tx, opt_state, param_sh, mesh)
    rep = shd.replicated(mesh)
    state = {"step": jax.ShapeDtypeStruct((), jnp.int32), "params": params, "batch_stats": batch_stats,
             "opt_state": opt_state, "rng": jax.eval_shape(lambda: jax.random.key_data(jax.random.key(0)))}
    shardings = {"step": rep, "params": param_sh, "batch_stats": stats_sh, "opt_state": opt_sh, "rng": rep}
    return model.config, fns, tx, core.abstract_like(state, shardings), shardings, mesh, rules


def abstract_batch(model_config: Any, batch_size: int, sharding: Any) -> dict:
    """The train batch as the pipeline delivers it: uint8 clips, int32 action and privacy labels."""
    import jax
    import jax.numpy as jnp

    video = (batch_size, model_config.num_frames, *model_config.image_size, 3)
    return {"video": jax.ShapeDtypeStruct(video, jnp.uint8, sharding=sharding),
            "action": jax.ShapeDtypeStruct((batch_size,), jnp.int32, sharding=sharding),
            "privacy": jax.ShapeDtypeStruct((batch_size, model_config.num_attributes), jnp.int32,
                                            sharding=sharding)}


def bytes_per_device(tree: Any) -> int:
    """Bytes one device holds of a pytree of sharded `ShapeDtypeStruct`s (replicated leaves count in full)."""
    import jax
    import numpy as np

    return sum(math.prod(x.sharding.shard_shape(x.shape)) * np.dtype(x.dtype).itemsize for x in jax.tree.leaves(tree))


def total_bytes(tree: Any) -> int:
    """Bytes of a pytree's global (unsharded) arrays."""
    import jax
    import numpy as np

    return sum(math.prod(x.shape) * np.dtype(x.dtype).itemsize for x in jax.tree.leaves(tree))


def _memory_stats(compiled: Any) -> dict[str, int | None]:
    try:
        stats = compiled.memory_analysis()
    except Exception:  # noqa: BLE001  (some backends raise "unimplemented" instead of returning None)
        stats = None
    out: dict[str, int | None] = {}
    for key, attr in COMPILED_FIELDS.items():
        value = getattr(stats, attr, None) if stats is not None else None
        out[key] = int(value) if value is not None and value >= 0 else None
    return out


def _flops(compiled: Any) -> float | None:
    try:
        cost = compiled.cost_analysis()
    except Exception:  # noqa: BLE001
        return None
    if isinstance(cost, (list, tuple)):  # older JAX: one dict per program
        cost = cost[0] if cost else None
    value = cost.get("flops") if isinstance(cost, dict) else None
    return float(value) if value is not None and value >= 0 else None


def estimate_peak(state_and_batch: int, compiled: dict[str, int | None]) -> int:
    """Per-device peak estimate: arguments + non-aliased outputs + temporaries + generated code.

    Missing fields fall back to what is known: the arguments to the state + batch bytes, the outputs to fully
    aliased (the state is donated), temporaries and code to 0 (the report says they are missing).
    """
    argument = compiled["argument"] if compiled["argument"] is not None else state_and_batch
    fresh_out = max((compiled["output"] or 0) - (compiled["alias"] or 0), 0) if compiled["output"] is not None else 0
    return argument + fresh_out + (compiled["temp"] or 0) + (compiled["generated_code"] or 0)


def run_check(args: argparse.Namespace) -> dict[str, Any]:
    """Builds the abstract state and batch, lowers and compiles the train step, and returns the report dict."""
    import jax

    from anonvid import sharding as shd
    from anonvid.data import augment
    from anonvid.trainers import dual_vit as trainer

    if args.batch < 1:
        raise ValueError(f"--batch must be >= 1; got {args.batch}")
    cfg = train_config(args)
    model_config, fns, tx, state, shardings, mesh, rules = abstract_train_state(
        cfg, args.num_classes, args.num_attributes, args.total_steps)
    batch_sh = shd.batch_sharding(mesh, rules)
    batch = abstract_batch(model_config, args.batch, batch_sh)
    step = trainer.make_train_step(fns, tx, shardings, batch_sh, privacy_mode=cfg.privacy_mode,
                                   privacy_weight=float(cfg.privacy_weight), grl_gamma=float(cfg.grl_gamma),
                                   total_steps=args.total_steps,
                                   clip_augment=augment.ClipAugment.from_config(cfg.augment.to_dict()),
                                   compiler_options=cfg.compiler_options.to_dict())
    # A persistent-cache hit (JAX_COMPILATION_CACHE_DIR) would skip the compile being checked: compile for real.
    cache_was_on = jax.config.jax_enable_compilation_cache
    jax.config.update("jax_enable_compilation_cache", False)
    try:
        t0 = time.perf_counter()
        lowered = step.lower(state, batch)
        t1 = time.perf_counter()
        compiled = lowered.compile()
        t2 = time.perf_counter()
    finally:
        jax.config.update("jax_enable_compilation_cache", cache_was_on)

    per_device = {"params": bytes_per_device(state["params"]), "optimizer_state": bytes_per_device(state["opt_state"]),
                  "batch": bytes_per_device(batch),
                  "other_state": bytes_per_device({k: state[k] for k in ("step", "rng", "batch_stats")})}
    mem = _memory_stats(compiled)
    peak = estimate_peak(sum(per_device.values()), mem)
    budget = args.device_memory_gib
    dp = shd.data_axis_size(mesh, rules)
    return {
        "variant": args.variant, "dim": model_config.dim, "depth": model_config.depth,
        "num_heads": model_config.num_heads, "frames": model_config.num_frames,
        "image_size": list(model_config.image_size), "tubelet": list(model_config.tubelet),
        "tokens": model_config.num_tubelets, "prune_blocks": list(model_config.prune_blocks),
        "keep_rates": list(model_config.keep_rates), "dtype": args.dtype, "remat": bool(args.remat),
        "privacy_mode": cfg.privacy_mode, "augment": True, "num_classes": args.num_classes,
        "num_attributes": args.num_attributes,
        "batch": args.batch, "batch_per_data_shard": args.batch // dp,
        "mesh": {k: int(v) for k, v in mesh.shape.items()}, "devices": int(mesh.size),
        "platform": jax.devices()[0].platform, "rules": {k: v for k, v in rules},
        "param_specs": _param_specs(state["params"]),
        "num_params": sum(math.prod(x.shape) for x in jax.tree.leaves(state["params"])),
        "param_bytes_total": total_bytes(state["params"]),
        "bytes_per_device": per_device, "compiled_bytes_per_device": mem,
        "peak_bytes_per_device": peak, "device_memory_gib": budget,
        "fits": None if budget is None else bool(peak <= budget * GIB),
        "flops_per_device": _flops(compiled), "lower_s": round(t1 - t0, 2), "compile_s": round(t2 - t1, 2),
    }


def _param_specs(params: Any) -> dict[str, str]:
    import jax

    return {jax.tree_util.keystr(path, simple=True, separator="/").removesuffix("/value"): str(tuple(x.sharding.spec))
            for path, x in jax.tree_util.tree_leaves_with_path(params)}


def _mib(n: int | None) -> str:
    return f"{'n/a':>10}" if n is None else f"{n / MIB:10.2f}"


def format_report(r: dict[str, Any]) -> str:
    """The human-readable report (one line per quantity, MiB per device)."""
    mesh = " × ".join(f"{k}={v}" for k, v in r["mesh"].items())
    rules = ", ".join(f"{k}→{v}" for k, v in r["rules"].items() if v in r["mesh"]) or "all replicated"
    t, h, w = r["frames"], *r["image_size"]
    lines = [
        (f"AOT check: dual_vit {r['variant']} (D {r['dim']}, depth {r['depth']}, {r['num_heads']} heads), "
         f"{t}×{h}×{w} clips in {'×'.join(map(str, r['tubelet']))} tubelets → {r['tokens']} tokens, pruning at "
         f"blocks {r['prune_blocks']} keep {r['keep_rates']}"),
        (f"train step: {r['privacy_mode']} with augmentation, compute {r['dtype']}, "
         f"remat {'on' if r['remat'] else 'off'}, global batch {r['batch']} ({r['batch_per_data_shard']} per data "
         f"shard)"),
        f"mesh {mesh} on {r['devices']} {r['platform']} devices; rules: {rules}",
        f"parameters: {r['num_params'] / 1e6:.2f} M, {r['param_bytes_total'] / MIB:.1f} MiB in total",
        "",
        f"{'per device':<38}{'MiB':>10}",
    ]
    b = r["bytes_per_device"]
    for label, key in (("parameters", "params"), ("optimizer state", "optimizer_state"), ("batch", "batch"),
                       ("step + rng", "other_state")):
        lines.append(f"  {label:<36}{_mib(b[key])}")
    c = r["compiled_bytes_per_device"]
    lines.append("compiled program (memory_analysis)")
    for label, key in (("arguments", "argument"), ("outputs", "output"), ("aliased (donated state)", "alias"),
                       ("temporaries (activations)", "temp"), ("generated code", "generated_code")):
        lines.append(f"  {label:<36}{_mib(c[key])}")
    missing = [k for k, v in c.items() if v is None]
    note = f"  (not reported by the backend: {', '.join(missing)})" if missing else ""
    lines.append(f"{'estimated peak':<38}{_mib(r['peak_bytes_per_device'])}  (arguments + outputs − aliased + "
                 f"temporaries + code){note}")
    if r["device_memory_gib"] is None:
        lines.append("budget: none given (--device-memory-gib)")
    else:
        share = r["peak_bytes_per_device"] / (r["device_memory_gib"] * GIB)
        verdict = "FITS" if r["fits"] else "DOES NOT FIT"
        lines.append(f"{verdict}: {r['peak_bytes_per_device'] / GIB:.2f} GiB of {r['device_memory_gib']:g} GiB per "
                     f"device ({share:.0%})")
    flops = r["flops_per_device"]
    if flops is None:
        lines.append("FLOPs per device per step: n/a (the backend gives no cost analysis)")
    else:
        lines.append(f"FLOPs per device per step: {flops / 1e9:,.2f} GFLOP (XLA cost analysis of the partitioned "
                     f"program; × {r['devices']} devices = {flops * r['devices'] / 1e12:,.3f} TFLOP)")
    lines.append(f"lower {r['lower_s']:.1f} s, compile {r['compile_s']:.1f} s")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; bad input exits with status 2 and a message saying what to fix."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.fake_devices is not None and args.fake_devices < 1:
        parser.error(f"--fake-devices must be >= 1; got {args.fake_devices}")
    try:
        parse_mesh(args.mesh)
        parse_rules(args.rules)
    except ValueError as err:
        parser.error(str(err))
    _configure_devices(args.fake_devices)
    try:
        report = run_check(args)
    except ValueError as err:  # config, mesh, rules and shape errors (ShardingError is a ValueError)
        parser.error(str(err))
    print(format_report(report), flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
