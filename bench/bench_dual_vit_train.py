"""Training-step throughput (clips/s) of anonvid's dual-token pruning ViT against the same model in PyTorch.

One training step = forward (training mode: stochastic depth on, pruning at the configured keep rates) +
CE(action logits, action labels) + BCE(privacy logits, 5 binary attributes) + backward + AdamW update
(lr 1e-4, weight decay 0.05 on kernels only), float32, on the same random clips and labels.

- anonvid: `anonvid.trainers.dual_vit.make_train_step` (privacy mode `cooperative`, no augmentation) when that
  module exists, else an equivalent step built here the same way (`nnx.split`/`merge`, `optax.adamw`, `jax.jit`
  with a donated state); the state comes from `anonvid.trainers.core.create_state`.
- PyTorch: `bench/peers/torch_dual_vit.py` (the same architecture and pruning), eager, `torch.optim.AdamW` with
  the same decay groups, `torch.set_num_threads` = the cores XLA:CPU uses; with `--torch-compile` also
  `torch.compile(model)` (inductor), reported as its own column.

Before timing, the anonvid parameters are copied into the PyTorch model and the two forward passes are checked
to agree on one clip (eval mode, the configured pruning): the same kept tubelets and logits within 1e-4.
Steps are timed in interleaved repetitions after warm-up (compilation excluded); reported are the median and
the minimum over repetitions and the ratio anonvid clips/s ÷ PyTorch clips/s (issue 3 target: >= 1.0).

Usage:
  python -m bench.bench_dual_vit_train [--variant small] [--frames 16] [--size 112] [--batch 8]
                                       [--keep-rates 0.9] [--reps 5] [--threads 0] [--torch-compile]
                                       [--glibc-reuse] [--out results.json]
"""
from __future__ import annotations

import argparse
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch
from flax import nnx

from anonvid import compile_cache, config_defaults, pruning
from anonvid import sharding as shd
from anonvid.models.dual_vit import DualViT, make_config
from anonvid.trainers import core
from bench import timing
from bench.peers.torch_dual_vit import TorchDualViT, copy_from_anonvid

NUM_CLASSES, NUM_ATTRS = 51, 5
LR, WEIGHT_DECAY = 1e-4, 0.05
TOTAL_STEPS = 1000  # length of the optimizer schedule (warm-up 0, cosine); only its shape, not its cost, depends on it


def plain_train_step(fns: core.ModelFns, tx, shardings, batch_sharding):
    """The step this bench builds when `anonvid.trainers.dual_vit` is not available: CE + BCE, AdamW."""

    def step(state, batch):
        key = jax.random.fold_in(jax.random.wrap_key_data(state["rng"]), state["step"])

        def loss_fn(params):
            model = nnx.merge(fns.train_graph, params, state["batch_stats"], copy=True)
            out, _ = model(batch["video"], train=True, key=key)
            ce = optax.softmax_cross_entropy_with_integer_labels(out["action"], batch["action"]).mean()
            bce = optax.sigmoid_binary_cross_entropy(out["privacy"], batch["privacy"].astype(jnp.float32)).mean()
            return ce + bce

        loss, grads = jax.value_and_grad(loss_fn)(state["params"])
        updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
        params = optax.apply_updates(state["params"], updates)
        return dict(state, step=state["step"] + 1, params=params, opt_state=opt_state), {"loss": loss}

    return jax.jit(step, in_shardings=(shardings, batch_sharding), out_shardings=(shardings, None),
                   donate_argnums=(0,))


def make_jax_step(fns, tx, shardings, batch_sharding):
    """(jitted step, where it came from)."""
    try:
        from anonvid.trainers import dual_vit as trainer
    except ImportError:
        return plain_train_step(fns, tx, shardings, batch_sharding), "bench plain step"
    step = trainer.make_train_step(fns, tx, shardings, batch_sharding, privacy_mode="cooperative",
                                   privacy_weight=1.0, grl_gamma=10.0, total_steps=TOTAL_STEPS, clip_augment=None)
    return step, "anonvid.trainers.dual_vit.make_train_step (cooperative, no augmentation)"


def torch_optimizer(model: torch.nn.Module) -> torch.optim.Optimizer:
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    return torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY},
                              {"params": no_decay, "weight_decay": 0.0}], lr=LR)


def check_agreement(model, peer, clip: np.ndarray) -> dict:
    """Eval-mode forward of one clip through both: kept ids must be equal and logits within 1e-4."""
    graph, params = nnx.split(model)
    out, aux = jax.jit(lambda p, x: nnx.merge(graph, p)(x))(params, jnp.asarray(clip))
    peer.eval()
    with torch.no_grad():
        ref, ids = peer(torch.from_numpy(clip))
    peer.train()
    same_ids = bool(np.array_equal(np.asarray(aux["kept_ids"]), ids.numpy()))
    diff = max(float(np.abs(np.asarray(out[h]) - ref[h].numpy()).max()) for h in ("action", "privacy"))
    if not same_ids or diff > 1e-4:
        raise AssertionError(f"anonvid and the torch peer disagree: same kept ids {same_ids}, max |logit diff| "
                             f"{diff:.2e}; the timing would not compare like with like")
    return {"same_kept_ids": same_ids, "max_abs_logit_diff": diff}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variant", default="small", help="DualViT variant (tiny, small, base)")
    parser.add_argument("--frames", type=int, default=16, help="frames per clip")
    parser.add_argument("--size", type=int, default=112, help="frame height = width")
    parser.add_argument("--batch", type=int, default=8, help="clips per step")
    parser.add_argument("--keep-rates", default="0.9",
                        help="comma list: one keep rate for every pruning block, or one per block")
    parser.add_argument("--reps", type=int, default=5, help="interleaved repetitions (median and min reported)")
    parser.add_argument("--threads", type=int, default=0,
                        help="threads for both libraries (0 = every core the process may use, XLA:CPU's default)")
    parser.add_argument("--torch-compile", action="store_true", help="also time torch.compile(model)")
    timing.add_glibc_reuse_flag(parser)
    parser.add_argument("--out", help="write results as JSON here")
    args = parser.parse_args(argv)
    if args.glibc_reuse:
        timing.reexec_with_glibc_reuse("bench.bench_dual_vit_train", sys.argv[1:] if argv is None else list(argv))
    threads = timing.xla_cpu_threads(args.threads)  # before the first JAX computation below
    torch.set_num_threads(threads)  # by default XLA:CPU's intra-op pool uses every core the process may run on
    compile_cache.enable()

    rates = tuple(float(r) for r in args.keep_rates.split(",") if r)
    if len(rates) == 1:
        rates = rates * len(make_config(NUM_CLASSES, args.variant).prune_blocks)
    # One compiled initialiser (as anonvid.models.registry does; that module is not imported here because importing
    # it starts JAX's backend, which must wait until --threads has set XLA_FLAGS).
    model = nnx.jit(lambda: DualViT(NUM_CLASSES, num_attributes=NUM_ATTRS, variant=args.variant,
                                    num_frames=args.frames, image_size=(args.size, args.size), keep_rates=rates,
                                    rngs=nnx.Rngs(0)))()
    cfg = model.config
    flops_fwd = pruning.flops_per_clip(cfg)
    print(f"DualViT {args.variant}: D {cfg.dim}, depth {cfg.depth}, {cfg.num_heads} heads, clip {cfg.num_frames}x"
          f"{cfg.image_size[0]}x{cfg.image_size[1]}, tubelet {cfg.tubelet} -> {cfg.num_tubelets} tubelets, keep "
          f"{rates} at blocks {cfg.prune_blocks} (fuse {cfg.fuse}), drop path {cfg.drop_path_rate}; batch "
          f"{args.batch}, {threads} threads, {args.reps} interleaved reps", flush=True)

    rng = np.random.default_rng(0)
    clips = rng.random((args.batch, cfg.num_frames, *cfg.image_size, 3), dtype=np.float32)
    actions = rng.integers(0, NUM_CLASSES, args.batch).astype(np.int32)
    attrs = rng.integers(0, 2, (args.batch, NUM_ATTRS)).astype(np.int32)

    peer = TorchDualViT.from_config(cfg)
    copy_from_anonvid(peer, nnx.to_pure_dict(nnx.state(model, nnx.Param)))
    agreement = check_agreement(model, peer, clips[:1])
    print(f"  agreement on one clip: {agreement}", flush=True)

    # ---- anonvid
    sharding_cfg = config_defaults.sharding()
    mesh, rules = shd.make_mesh(sharding_cfg.mesh), tuple(tuple(r) for r in sharding_cfg.rules)
    tx = core.make_optimizer({"lr": LR, "weight_decay": WEIGHT_DECAY, "warmup_steps": 0, "grad_clip": 0.0},
                             TOTAL_STEPS)
    fns, state, shardings = core.create_state(model, tx, mesh, rules, seed=0)
    del model
    batch_sh = shd.batch_sharding(mesh, rules)
    jax_step, step_source = make_jax_step(fns, tx, shardings, batch_sh)
    batch = jax.device_put({"video": clips, "action": actions, "privacy": attrs}, batch_sh)
    box = {"state": state}

    def run_jax():
        box["state"], metrics = jax_step(box["state"], batch)
        jax.block_until_ready((box["state"], metrics))

    # ---- PyTorch
    t_clips, t_actions = torch.from_numpy(clips), torch.from_numpy(actions).long()
    t_attrs = torch.from_numpy(attrs).float()

    def torch_runner(module):
        opt = torch_optimizer(peer)

        def run():
            opt.zero_grad(set_to_none=True)
            out, _ = module(t_clips)
            loss = (torch.nn.functional.cross_entropy(out["action"], t_actions)
                    + torch.nn.functional.binary_cross_entropy_with_logits(out["privacy"], t_attrs))
            loss.backward()
            opt.step()

        return run

    peer.train()
    runners = {"anonvid": run_jax, "torch eager": torch_runner(peer)}
    if args.torch_compile:
        runners["torch.compile"] = torch_runner(torch.compile(peer))
    print(f"  warming up {', '.join(runners)} ...", flush=True)
    times, cpu = timing.interleaved_times(runners, args.reps, warmup=2, progress=lambda m: print(m, flush=True))
    rows = {}
    for name, ts in times.items():
        s = timing.summary(ts)
        rows[name] = {"time_s": s, "times_s": ts, "cpu_s": timing.summary(cpu[name]),
                      "clips_per_s_median": args.batch / s["median"],
                      "clips_per_s_best": args.batch / s["min"],
                      "train_gflops_median": 3 * flops_fwd * args.batch / s["median"] / 1e9}
    ratio = {name: rows["anonvid"]["clips_per_s_median"] / r["clips_per_s_median"]
             for name, r in rows.items() if name != "anonvid"}
    ratio_best = {name: rows["anonvid"]["clips_per_s_best"] / r["clips_per_s_best"]
                  for name, r in rows.items() if name != "anonvid"}
    lines = [("| implementation | median s/step | min s/step | clips/s (median) | clips/s (best) | ≈ GFLOP/s | "
              "anonvid ÷ this (median) | anonvid ÷ this (best) | CPU s/step (median) |"),
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['time_s']['median']:.2f} | {r['time_s']['min']:.2f} | "
                     f"{r['clips_per_s_median']:.2f} | {r['clips_per_s_best']:.2f} | {r['train_gflops_median']:.0f} | "
                     f"{'—' if name == 'anonvid' else format(ratio[name], '.2f') + '×'} | "
                     f"{'—' if name == 'anonvid' else format(ratio_best[name], '.2f') + '×'} | "
                     f"{r['cpu_s']['median']:.2f} |")
    table = "\n".join(lines)
    print(table)
    result = {
        "rows": rows, "ratio_median": ratio, "ratio_best": ratio_best, "table_markdown": table,
        "agreement": agreement, "jax_step": step_source,
        "config": {"variant": args.variant, "dim": cfg.dim, "depth": cfg.depth, "heads": cfg.num_heads,
                   "frames": cfg.num_frames, "size": list(cfg.image_size), "tubelet": list(cfg.tubelet),
                   "tubelets": cfg.num_tubelets, "prune_blocks": list(cfg.prune_blocks), "keep_rates": list(rates),
                   "fuse": cfg.fuse, "drop_path_rate": cfg.drop_path_rate, "batch": args.batch, "reps": args.reps,
                   "threads": threads,
                   "forward_gflop_per_clip": flops_fwd / 1e9},
        "environment": timing.environment(host_memory=timing.host_memory_note(), torch=torch.__version__,
                                          torch_threads=torch.get_num_threads()),
    }
    return timing.write_result(args.out, result)


if __name__ == "__main__":
    main()
