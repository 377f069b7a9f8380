"""Minimax throughput (clips/s) of anonvid's penalty-driven anonymizer against the same step in PyTorch (issue 5).

One minimax pair = step 1 (`adversarial.make_anonymizer_step`: f_A updated on L_T − ω·L_B + λ·max(0, RMS − B), f_T
and f_B frozen in inference mode) on batch A + step 2 (`make_branches_step`: f_T on CE, f_B on NT-Xent, f_A
frozen) on batch B; each batch holds `--batch` clips of `--frames`×`--size`² and as many privacy images, with the
SimCLR views of `adversarial.default_config()` drawn inside each step. Networks, optimizers (Adam, lr 4e-5 / 1e-4 /
1e-4), budget (B 0.3, λ 1, ω 1, pixel kind) and temperature are `adversarial.default_config()`'s synthetic CPU
sizes: UNet++ (8, 16, 32) conv encoder; R3D (8, 16, 32, 64), one block per stage, Kinetics stem 3×7×7 stride
(1, 2, 2), temporal stride and centring; ContrastiveEncoder ResNet-10 width 16, small stem stride 2, 128 → 128.
Clips/s = 2 · batch / seconds per pair.

- anonvid: `adversarial.build` + the two jitted steps (donated state), inputs uint8 as the trainer feeds them.
- PyTorch: `bench/peers/torch_penalty.py` (`PenaltyPeer`), eager, channels-last memory format unless
  `--contiguous`; its SimCLR crop resamples with `F.grid_sample` (the same draws and cost, not the same pixels).
  It is timed at `--threads` (default: every core, XLA:CPU's default) and, as its own rows, at each other thread
  count up to the core count, so that anonvid at its default is also compared with PyTorch at its best.

Before timing, anonvid's parameters and batch statistics are copied into the peer and one eval-mode forward of
each network is checked to agree (max |diff| ≤ 1e-4). The runners are timed in interleaved repetitions after
warm-up (compilation excluded); reported are median and minimum seconds per pair, clips/s and the ratio anonvid ÷
PyTorch (target ≥ 1.0). `--components` then times, in a second interleaved phase with PyTorch at the thread
count that ran its pair fastest, step 1 and step 2 alone and the three networks' forward + backward (gradient of
the sum of the output w.r.t. the parameters, training mode: f_A on the step-1 frames, f_T on the clips, f_B on
both views): where the time goes.

Usage:
  python -m bench.bench_penalty_step [--batch 8] [--frames 8] [--size 32] [--reps 5] [--warmup 2] [--threads 0]
                                     [--torch-threads 1,2] [--contiguous] [--components] [--glibc-reuse]
                                     [--out results.json]
"""
from __future__ import annotations

import argparse
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import torch
from flax import nnx

from anonvid import compile_cache
from bench import timing

NUM_CLASSES = 7  # the synthetic benchmark's actions


def _config():
    from anonvid.trainers import adversarial

    return adversarial.default_config()


def build_anonvid(cfg):
    """(fns, txs, state, shardings, batch sharding, step 1, step 2) at the config's settings."""
    from anonvid import sharding as shd
    from anonvid.data import augment
    from anonvid.trainers import adversarial

    fns, txs, state, shardings, mesh, rules = adversarial.build(cfg, NUM_CLASSES)
    batch_sh = shd.batch_sharding(mesh, rules)
    views = augment.ClipAugment.from_config(cfg.privacy.augment.to_dict())
    step1 = adversarial.make_anonymizer_step(
        fns, txs["anonymizer"], shardings, batch_sh, budget=float(cfg.budget.B), weight=float(cfg.budget.weight),
        kind=cfg.budget.kind, omega=float(cfg.omega), temperature=float(cfg.privacy.temperature), views=views)
    step2 = adversarial.make_branches_step(fns, txs, shardings, batch_sh,
                                           temperature=float(cfg.privacy.temperature), views=views)
    return fns, txs, state, shardings, batch_sh, step1, step2


def build_peer(cfg, state, channels_last: bool):
    from anonvid.trainers import adversarial
    from bench.peers.torch_penalty import PenaltyPeer, copy_from_anonvid

    aug = cfg.privacy.augment
    peer = PenaltyPeer(
        NUM_CLASSES, anonymizer=dict(cfg.anonymizer.model.kwargs), action=dict(cfg.action.model.kwargs),
        privacy=dict(cfg.privacy.model.kwargs, proj_dim=cfg.privacy.model.proj_dim),
        lrs=(cfg.anonymizer.lr, cfg.action.lr, cfg.privacy.lr), budget=float(cfg.budget.B),
        weight=float(cfg.budget.weight), omega=float(cfg.omega), temperature=float(cfg.privacy.temperature),
        augment=dict(crop_scale=tuple(aug.crop_scale), crop_ratio=tuple(aug.crop_ratio), flip=aug.flip,
                     jitter=aug.jitter, grey_prob=aug.grey_prob),
        channels_last=channels_last)
    for net, module in zip(adversarial.NETS, peer.nets):
        copy_from_anonvid(module, nnx.to_pure_dict(state[net]["params"]),
                          nnx.to_pure_dict(state[net]["batch_stats"]))
    return peer


def check_agreement(fns, state, peer, clip: np.ndarray) -> float:
    """Max |diff| of the three networks' eval-mode outputs on one clip (its frames; its first frame for f_B)."""
    from anonvid.trainers import adversarial

    frames = clip[0]
    inputs = {"anonymizer": frames, "action": clip, "privacy": frames[:1]}

    def run(sub, inputs):
        return {net: nnx.merge(fns[net].eval_graph, sub[net]["params"], sub[net]["batch_stats"])(inputs[net])
                for net in adversarial.NETS}

    sub = {net: {k: state[net][k] for k in ("params", "batch_stats")} for net in adversarial.NETS}
    out = jax.jit(run)(sub, jax.tree.map(jnp.asarray, inputs))
    for m in peer.nets:
        m.eval()
    with torch.no_grad():
        ref = {"anonymizer": peer.f_a(peer.images(frames)).permute(0, 2, 3, 1),
               "action": peer.f_t(peer.clips(clip)), "privacy": peer.f_b(peer.images(frames[:1]))}
    diff = max(float(np.abs(np.asarray(out[k]) - ref[k].numpy()).max()) for k in ref)
    if diff > 1e-4:
        raise AssertionError(f"anonvid and the torch peer disagree (max |diff| {diff:.2e}); the timing would not "
                             f"compare like with like")
    return diff


def component_runners(fns, box, peer, batches) -> dict:
    """Forward + backward of each network alone, in both libraries (see the module docstring).

    `box["state"]` is read at call time: the step runners donate (and so delete) the state they were given.
    """
    x = batches[0]["video"].astype(np.float32) / 255.0
    imgs = batches[0]["images"].astype(np.float32) / 255.0
    fa_in = np.concatenate([x.reshape((-1,) + x.shape[2:]), imgs, imgs])  # action frames + two views
    fb_in = np.concatenate([imgs, imgs])
    runners = {}
    jax_inputs = {"anonymizer": jnp.asarray(fa_in), "action": jnp.asarray(x), "privacy": jnp.asarray(fb_in)}
    torch_inputs = {"anonymizer": peer.images(fa_in), "action": peer.clips(x), "privacy": peer.images(fb_in)}
    for net, module in zip(("anonymizer", "action", "privacy"), peer.nets):
        graph = fns[net].train_graph

        def loss(params, stats, v, graph=graph):
            return jnp.sum(nnx.merge(graph, params, stats, copy=True)(v))

        grad = jax.jit(jax.grad(loss))

        def run_jax(grad=grad, net=net, v=jax_inputs[net]):
            sub = box["state"][net]
            jax.block_until_ready(grad(sub["params"], sub["batch_stats"], v))

        def run_torch(module=module, v=torch_inputs[net]):
            module.train()
            module.zero_grad(set_to_none=True)
            module(v).sum().backward()

        runners[f"anonvid {net} fwd+bwd"] = run_jax
        runners[f"torch {net} fwd+bwd"] = run_torch
    return runners


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=8, help="clips (and privacy images) per batch")
    parser.add_argument("--frames", type=int, default=8, help="frames per clip")
    parser.add_argument("--size", type=int, default=32, help="frame height = width")
    parser.add_argument("--reps", type=int, default=5, help="interleaved repetitions (median and min reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls per runner first (the first compiles)")
    parser.add_argument("--threads", type=int, default=0,
                        help="threads for anonvid and the main PyTorch row (0 = every core the process may use, "
                             "XLA:CPU's default); PyTorch is also timed at each other count up to the core count")
    parser.add_argument("--torch-threads", default="",
                        help="comma list of thread counts for the PyTorch rows (default: --threads, then every other "
                             "count up to the core count)")
    parser.add_argument("--contiguous", action="store_true", help="PyTorch in contiguous NCHW instead of channels-last")
    parser.add_argument("--components", action="store_true",
                        help="also time step 1, step 2 and each network's forward + backward alone")
    timing.add_glibc_reuse_flag(parser)
    parser.add_argument("--out", help="write results as JSON here")
    args = parser.parse_args(argv)
    if args.glibc_reuse:
        timing.reexec_with_glibc_reuse("bench.bench_penalty_step", sys.argv[1:] if argv is None else list(argv))
    threads = timing.xla_cpu_threads(args.threads)  # before the first JAX computation below
    compile_cache.enable()
    cfg = _config()
    print(f"penalty minimax pair: batch {args.batch} clips {args.frames}x{args.size}x{args.size} + {args.batch} "
          f"privacy images, {threads} threads (anonvid), torch channels-last {not args.contiguous}, {args.reps} "
          f"interleaved reps", flush=True)

    rng = np.random.default_rng(0)
    batches = [{"video": rng.integers(0, 256, (args.batch, args.frames, args.size, args.size, 3)).astype(np.uint8),
                "action": rng.integers(0, NUM_CLASSES, args.batch).astype(np.int32),
                "images": rng.integers(0, 256, (args.batch, args.size, args.size, 3)).astype(np.uint8)}
               for _ in range(2)]

    fns, txs, state, shardings, batch_sh, step1, step2 = build_anonvid(cfg)
    torch.set_num_threads(threads)
    peer = build_peer(cfg, state, channels_last=not args.contiguous)
    agreement = check_agreement(fns, state, peer, batches[0]["video"][:1].astype(np.float32) / 255.0)
    print(f"  agreement (eval forward of f_A, f_T, f_B on one clip): max |diff| {agreement:.2e}", flush=True)

    device_batches = [jax.device_put(b, batch_sh) for b in batches]
    box = {"state": state}

    def jax_step(step, i):
        box["state"], metrics = step(box["state"], device_batches[i])
        jax.block_until_ready((box["state"], metrics))

    def run_jax():
        jax_step(step1, 0)
        jax_step(step2, 1)

    t_batches = [(b["video"], torch.from_numpy(b["action"]).long(), b["images"]) for b in batches]

    def torch_step(which, i):
        video, labels, images = t_batches[i]  # the uint8 → float conversion inside, as anonvid's step does it
        fn = peer.anonymizer_step if which == 1 else peer.branches_step
        fn(peer.clips(video), labels, peer.images(images))

    def torch_at(n, body):
        def run():
            torch.set_num_threads(n)
            body()
        return run

    def torch_pair():
        torch_step(1, 0)
        torch_step(2, 1)

    thread_counts = ([int(n) for n in args.torch_threads.split(",") if n] or
                     [threads] + [n for n in range(1, timing.usable_cores() + 1) if n != threads])
    runners = {"anonvid": run_jax}
    for n in thread_counts:
        runners[f"torch eager, {n} thread{'s' if n > 1 else ''}"] = torch_at(n, torch_pair)
    print(f"  warming up {len(runners)} runners ...", flush=True)
    load_start = os.getloadavg()
    times, cpu = timing.interleaved_times(runners, args.reps, warmup=args.warmup,
                                          progress=lambda m: print(m, flush=True))
    best_torch = min((n for n in times if n != "anonvid"), key=lambda n: timing.summary(times[n])["median"])
    if args.components:  # a second phase, PyTorch at the thread count that ran its pair fastest
        n_best = thread_counts[list(runners).index(best_torch) - 1]
        parts = {"anonvid step 1": lambda: jax_step(step1, 0), "anonvid step 2": lambda: jax_step(step2, 1),
                 f"torch step 1 ({n_best} thr)": torch_at(n_best, lambda: torch_step(1, 0)),
                 f"torch step 2 ({n_best} thr)": torch_at(n_best, lambda: torch_step(2, 1))}
        comps = component_runners(fns, box, peer, batches)
        parts.update({(f"{k} ({n_best} thr)" if k.startswith("torch") else k): torch_at(n_best, v)
                      if k.startswith("torch") else v for k, v in comps.items()})
        print(f"  components: warming up {len(parts)} runners ...", flush=True)
        part_times, part_cpu = timing.interleaved_times(parts, args.reps, warmup=args.warmup,
                                                        progress=lambda m: print(m, flush=True))
        times.update(part_times)
        cpu.update(part_cpu)
    load_end = os.getloadavg()
    torch.set_num_threads(threads)
    clips = 2 * args.batch
    rows = {}
    for name, ts in times.items():
        s = timing.summary(ts)
        rows[name] = {"time_s": s, "times_s": ts, "cpu_s": timing.summary(cpu[name]),
                      "clips_per_s_median": clips / s["median"], "clips_per_s_best": clips / s["min"]}
    pairs = [n for n in rows if n == "anonvid" or n.startswith("torch eager")]
    # anonvid clips/s ÷ PyTorch clips/s = PyTorch seconds ÷ anonvid seconds
    ratio = {n: rows[n]["time_s"]["median"] / rows["anonvid"]["time_s"]["median"] for n in pairs if n != "anonvid"}
    ratio_best = {n: rows[n]["time_s"]["min"] / rows["anonvid"]["time_s"]["min"] for n in pairs if n != "anonvid"}
    lines = ["| minimax pair | median s | min s | clips/s (median) | clips/s (best) | anonvid ÷ this (median) | "
             "anonvid ÷ this (best) | CPU s (median) |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name in pairs:
        r = rows[name]
        lines.append(f"| {name} | {r['time_s']['median']:.3f} | {r['time_s']['min']:.3f} | "
                     f"{r['clips_per_s_median']:.1f} | {r['clips_per_s_best']:.1f} | "
                     f"{'—' if name == 'anonvid' else format(ratio[name], '.2f') + '×'} | "
                     f"{'—' if name == 'anonvid' else format(ratio_best[name], '.2f') + '×'} | "
                     f"{r['cpu_s']['median']:.2f} |")
    table = "\n".join(lines)
    print(table)
    parts = [n for n in rows if n not in pairs]
    if parts:
        comp = ["| part | median ms | min ms |", "|---|---:|---:|"]
        comp += [f"| {n} | {rows[n]['time_s']['median'] * 1e3:.0f} | {rows[n]['time_s']['min'] * 1e3:.0f} |"
                 for n in parts]
        print("\n".join(comp))
    print(f"  anonvid ÷ best PyTorch ({best_torch}): {ratio[best_torch]:.2f}× median, {ratio_best[best_torch]:.2f}× "
          f"best; load average {load_start[0]:.1f} → {load_end[0]:.1f}", flush=True)
    result = {
        "rows": rows, "ratio_median": ratio, "ratio_best": ratio_best, "best_torch": best_torch,
        "table_markdown": table, "agreement_max_abs_diff": agreement,
        "load_average_start": load_start, "load_average_end": load_end,
        "config": {"batch": args.batch, "frames": args.frames, "size": args.size, "reps": args.reps,
                   "warmup": args.warmup, "threads": threads, "torch_channels_last": not args.contiguous,
                   "clips_per_pair": clips, "anonymizer": dict(cfg.anonymizer.model.kwargs),
                   "action": dict(cfg.action.model.kwargs), "privacy": dict(cfg.privacy.model.kwargs)},
        "environment": timing.environment(host_memory=timing.host_memory_note(), torch=torch.__version__),
    }
    return timing.write_result(args.out, result)


if __name__ == "__main__":
    main()
