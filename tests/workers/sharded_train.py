"""Worker for the sharding and multi-host tests: trains the smoke action model a few steps on a given mesh.

Run as a script in its own process (the device count is fixed when JAX starts):
    XLA_FLAGS=--xla_force_host_platform_device_count=8 python -m tests.workers.sharded_train --mesh 4,2 OUT.npz
With --num-processes/--process-id/--coordinator it first joins a `jax.distributed` CPU cluster (gloo).
Writes the final parameters (flattened, process 0 only), the per-step losses and the parameter shardings.
"""
import argparse
import json
import sys

import numpy as np


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--mesh", default="1,1", help="data,model sizes")
    p.add_argument("--devices", type=int, default=0, help="use only the first N devices (0 = all)")
    p.add_argument("--num-processes", type=int, default=1)
    p.add_argument("--process-id", type=int, default=0)
    p.add_argument("--coordinator", default="")
    args = p.parse_args(argv)

    import jax

    if args.num_processes > 1:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(args.coordinator, args.num_processes, args.process_id)

    from anonvid import config_defaults as D
    from anonvid import sharding as shd
    from anonvid.data import datasets
    from anonvid.trainers import classifier

    cfg = D.action_model(smoke=True)
    cfg.epochs = 2
    data_cfg = D.synthetic_actions(smoke=True)
    train = datasets.load_split(data_cfg, "train")
    test = datasets.load_split(data_cfg, "test")
    data, model = (int(x) for x in args.mesh.split(","))
    devices = jax.devices()[: args.devices] if args.devices else jax.devices()
    mesh = shd.make_mesh((("data", data), ("model", model)), devices=devices)
    out = classifier.train_classifier(cfg, train, test, task="action", num_outputs=datasets.NUM_CLASSES[
        data_cfg.name], mesh=mesh, progress=False)
    params = out["state"]["params"]
    leaves = jax.tree_util.tree_leaves_with_path(params)
    from jax.experimental import multihost_utils

    gathered = {jax.tree_util.keystr(k): np.asarray(multihost_utils.process_allgather(v, tiled=True))
                for k, v in leaves}
    specs = {jax.tree_util.keystr(k): str(v.sharding.spec) for k, v in leaves}
    if jax.process_index() == 0:
        np.savez(args.out, **gathered)
        with open(args.out + ".json", "w") as f:
            json.dump({"history": out["history"], "specs": specs, "devices": len(devices),
                       "processes": jax.process_count()}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
