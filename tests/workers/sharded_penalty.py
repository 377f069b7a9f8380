"""Worker for the sharded penalty-trainer test: the minimax steps on one device and on a data × model mesh.

Run in its own process with 8 fake CPU devices:
    XLA_FLAGS=--xla_force_host_platform_device_count=8 python -m tests.workers.sharded_penalty OUT.json
Runs step 1 and step 2 alternately (3 pairs) on the same batches from the same initial state, once on one
device and once on a 4 × 2 (data × model) mesh, and writes the largest parameter difference per network, the
per-step losses of both runs and the parameter shardings of the meshed run.
"""
import json
import sys

import numpy as np


def run(mesh_axes, devices, batches):
    import jax

    from anonvid import sharding as shd
    from anonvid.data import augment
    from anonvid.trainers import adversarial as ADV

    fast = {"xla_backend_optimization_level": 0}
    cfg = ADV.default_config(smoke=True, compiler_options=fast)
    mesh = shd.make_mesh(mesh_axes, devices=devices)
    fns, txs, state, shardings, mesh, rules = ADV.build(cfg, 3, mesh=mesh)
    batch_sh = shd.batch_sharding(mesh, rules)
    views = augment.ClipAugment.from_config(cfg.privacy.augment.to_dict())
    step1 = ADV.make_anonymizer_step(fns, txs["anonymizer"], shardings, batch_sh, budget=0.05, weight=1.0,
                                     kind="pixel", omega=1.0, temperature=0.1, views=views, compiler_options=fast)
    step2 = ADV.make_branches_step(fns, txs, shardings, batch_sh, temperature=0.1, views=views,
                                   compiler_options=fast)
    losses = []
    for i, batch in enumerate(batches):
        state, m = (step1 if i % 2 == 0 else step2)(state, jax.device_put(batch, batch_sh))
        losses.append(float(m["loss"]))
    params = {net: [np.asarray(x) for x in jax.tree.leaves(state[net]["params"])] for net in ADV.NETS}
    specs = sorted({str(x.sharding.spec) for net in ADV.NETS for x in jax.tree.leaves(state[net]["params"])})
    return params, losses, specs


def main(argv=None):
    out = (argv or sys.argv[1:])[0]
    import jax

    rng = np.random.default_rng(0)
    batches = [{"video": rng.integers(0, 256, (8, 4, 16, 16, 3), dtype=np.uint8),
                "action": rng.integers(0, 3, 8).astype(np.int32),
                "images": rng.integers(0, 256, (8, 16, 16, 3), dtype=np.uint8)} for _ in range(6)]
    ref, ref_losses, _ = run((("data", 1), ("model", 1)), jax.devices()[:1], batches)
    got, losses, specs = run((("data", 4), ("model", 2)), jax.devices(), batches)
    diff = {net: max(float(np.max(np.abs(a - b))) for a, b in zip(ref[net], got[net])) for net in ref}
    scale = {net: max(float(np.max(np.abs(a))) for a in ref[net]) for net in ref}
    with open(out, "w") as f:
        json.dump({"diff": diff, "scale": scale, "ref_losses": ref_losses, "losses": losses, "specs": specs,
                   "devices": len(jax.devices())}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
