"""Pieces every trainer shares: optimizer schedule, sharded state creation, metric logs and curve plots.

A trainer's state is a plain pytree `{"step", "params", "batch_stats", "opt_state", "rng"}` so that the jitted
step is a pure function of pytrees and Orbax can save and restore it as is. The model's structure lives in the
`nnx.GraphDef`s (one for training mode, one for evaluation mode), which are static under `jax.jit`.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Callable, Iterable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh
from tqdm.auto import tqdm

from anonvid import sharding as shd


def _decay_mask(params: Any) -> Any:
    """Weight decay on kernels only: no decay on biases and normalisation scales/offsets (1-D leaves)."""
    return jax.tree.map(lambda p: np.ndim(p) > 1, params)


def make_optimizer(optim: Mapping[str, Any], total_steps: int) -> optax.GradientTransformation:
    """AdamW with linear warm-up then cosine decay over the whole run (never reset per epoch).

    Args:
      optim: config with `lr`, `weight_decay`, `warmup_steps` (or `warmup_fraction`), `grad_clip` (0 = off),
        optional `b1`, `b2`, `end_lr_fraction`.
      total_steps: length of the run in optimizer steps.

    Returns:
      The optax transformation.
    """
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1; got {total_steps}")
    lr = float(optim["lr"])
    if lr <= 0:
        raise ValueError(f"optim.lr must be positive; got {lr}")
    warmup = int(optim.get("warmup_steps", 0) or round(float(optim.get("warmup_fraction", 0.0)) * total_steps))
    warmup = min(warmup, max(total_steps - 1, 0))
    schedule = optax.warmup_cosine_decay_schedule(
        init_value=0.0 if warmup else lr, peak_value=lr, warmup_steps=warmup,
        decay_steps=max(total_steps, warmup + 1), end_value=lr * float(optim.get("end_lr_fraction", 0.0)))
    parts = []
    if float(optim.get("grad_clip", 0.0)) > 0:
        parts.append(optax.clip_by_global_norm(float(optim["grad_clip"])))
    parts.append(optax.adamw(schedule, b1=float(optim.get("b1", 0.9)), b2=float(optim.get("b2", 0.999)),
                             weight_decay=float(optim.get("weight_decay", 0.0)), mask=_decay_mask))
    return optax.chain(*parts)


@dataclasses.dataclass(frozen=True)
class ModelFns:
    """Static halves of a split model: graph definitions for train and eval mode."""

    train_graph: nnx.GraphDef
    eval_graph: nnx.GraphDef


def split_model(model: nnx.Module) -> tuple[ModelFns, nnx.State, nnx.State]:
    """Splits a model into graph definitions, parameters and batch statistics.

    Raises if the model holds other mutable state (e.g. RNG streams), which the functional step would drop.
    """
    model.eval()
    eval_graph, _, _ = nnx.split(model, nnx.Param, nnx.BatchStat)
    model.train()
    train_graph, params, batch_stats, *rest = nnx.split(model, nnx.Param, nnx.BatchStat, ...)
    if rest and jax.tree.leaves(rest[0]):
        raise ValueError("model holds state other than Param and BatchStat; the functional trainer cannot carry it")
    return ModelFns(train_graph, eval_graph), params, batch_stats


def create_state(model: nnx.Module, tx: optax.GradientTransformation, mesh: Mesh, rules: Sequence[Any],
                 seed: int) -> tuple[ModelFns, dict, dict]:
    """Places a freshly built model and its optimizer state on `mesh` by the logical-axis rules.

    Args:
      model: the constructed NNX model (its initial parameters are used).
      tx: the optimizer.
      mesh: device mesh.
      rules: logical-axis → mesh-axis rules.
      seed: seed of the state's own RNG key (dropout, augmentation).

    Returns:
      `(fns, state, shardings)`: graph definitions, the sharded state pytree and its sharding pytree.
    """
    fns, params, batch_stats = split_model(model)
    param_sh = shd.state_shardings(params, mesh, rules)
    stats_sh = shd.state_shardings(batch_stats, mesh, rules)
    params = jax.device_put(params, param_sh)
    batch_stats = jax.device_put(batch_stats, stats_sh)
    opt_abstract = jax.eval_shape(tx.init, params)
    opt_sh = shd.optimizer_shardings(tx, opt_abstract, param_sh, mesh)
    opt_state = jax.jit(tx.init, out_shardings=opt_sh)(params)
    rep = shd.replicated(mesh)
    state = {
        "step": jax.device_put(jnp.zeros((), jnp.int32), rep),
        "params": params,
        "batch_stats": batch_stats,
        "opt_state": opt_state,
        "rng": jax.device_put(jax.random.key_data(jax.random.key(seed)), rep),
    }
    shardings = {"step": rep, "params": param_sh, "batch_stats": stats_sh, "opt_state": opt_sh, "rng": rep}
    return fns, state, shardings


def abstract_like(state: Any, shardings: Any) -> Any:
    """`ShapeDtypeStruct`s with shardings, the restore target of a checkpoint of `state`."""
    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(np.shape(x), x.dtype, sharding=s), state, shardings)


def mesh_for_batches(cfg: Mapping[str, Any], mesh: Mesh | None = None) -> tuple[Mesh, tuple]:
    """The run's mesh (given, or built from `cfg.sharding.mesh`) and rules table, after checking that
    `cfg.batch_size` and `cfg.eval_batch_size` divide over the data-parallel devices."""
    mesh = mesh or shd.make_mesh(cfg.sharding.mesh)
    rules = tuple(tuple(r) for r in cfg.sharding.rules)
    dp = shd.data_axis_size(mesh, rules)
    if int(cfg.batch_size) % dp or int(cfg.eval_batch_size) % dp:
        raise ValueError(f"batch sizes ({cfg.batch_size}, {cfg.eval_batch_size}) must be multiples of the data-"
                         f"parallel size {dp}")
    return mesh, rules


def open_run(workdir: str | None, *, keep: int | None, state: Any, shardings: Any, batches: Any):
    """Opens a run's checkpointer and metric log in `workdir` and restores its latest checkpoint, if any.

    Args:
      workdir: the run's folder (created if missing); None runs in memory (no checkpoint, no log).
      keep: checkpoints to keep (None: all).
      state: the freshly initialised train state (returned unchanged for a fresh run).
      shardings: the state's shardings (the restore target).
      batches: the run's `BatchIterator`; its data position is restored with the state.

    Returns:
      `(checkpointer, log, state, meta)`; `meta` is the saved metadata dict of a resumed run (the log is then
      truncated after its step) or None for a fresh run; checkpointer and log are None without a workdir.
    """
    if not workdir:
        return None, None, state, None
    from anonvid.checkpointing import Checkpointer

    os.makedirs(workdir, exist_ok=True)
    ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), keep=None if keep is None else int(keep))
    log = MetricLog(workdir)
    meta = None
    if ckpt.latest_step() is not None:
        state, meta = ckpt.restore(abstract_like(state, shardings))
        batches.set_state(meta["data"])
        log.truncate_after(int(meta["step"]))
    return ckpt, log, state, meta


def train_loop(train_step: Callable, state: Any, batches: Any, *, total_steps: int, steps_per_epoch: int,
               evaluate: Callable[[Any], Mapping[str, Any]], history: list[dict], ckpt: Any, log: Any,
               log_every: int, checkpoint_every: int, name: str, desc: str, progress: bool,
               check_record: Callable[[Mapping[str, float], int], None] | None = None) -> tuple[Any, list, int]:
    """The epoch loop the supervised trainers share: step, log, evaluate each epoch, checkpoint, resume-safe.

    Args:
      train_step: jitted `(state, batch) -> (state, metrics)`; metrics hold at least `loss` (all are logged).
      state: the (possibly restored) train state; its `step` says where the loop starts.
      batches: the run's `BatchIterator` (its position is saved with every checkpoint).
      total_steps, steps_per_epoch: run length and epoch length in steps.
      evaluate: `state -> metrics dict`, run at the end of every epoch (and once if the run has no full epoch).
      history: the per-epoch records so far (restored on resume); appended to in place.
      ckpt, log: the run's `Checkpointer` and `MetricLog` (None without a workdir); the checkpointer is closed.
      log_every: log the train metrics every this many steps.
      checkpoint_every: checkpoint every this many steps (0 = every epoch) and at the end.
      name: what the non-finite-loss error names.
      desc, progress: progress-bar label and switch.
      check_record: `(record, step) -> None`, called with every logged train record and raising to stop the
        run; default: stop at the first non-finite `loss`.

    Returns:
      `(state, history, step)`.
    """
    step = int(state["step"])
    every = int(checkpoint_every) or steps_per_epoch
    bar = tqdm(total=total_steps, initial=step, desc=desc, disable=not progress, leave=False, dynamic_ncols=True)
    it = iter(batches)
    try:
        while step < total_steps:
            state, out = train_step(state, next(it))
            step += 1
            bar.update(1)
            if step % max(1, int(log_every)) == 0 or step == total_steps:
                record = {k: float(v) for k, v in out.items()}
                if check_record is not None:
                    check_record(record, step)
                elif not np.isfinite(record["loss"]):
                    raise FloatingPointError(f"{name}: non-finite loss {record['loss']} at step {step}; lower "
                                             f"optim.lr or check the inputs")
                bar.set_postfix(loss=f"{record['loss']:.3f}")
                if log:
                    log.write({"step": step, "kind": "train", **record})
            if step % steps_per_epoch == 0:
                result = {"epoch": step // steps_per_epoch, "step": step, **evaluate(state)}
                history.append(result)
                if log:
                    log.write({"kind": "eval", **result})
            if ckpt and (step % every == 0 or step == total_steps):
                ckpt.save(step, state, {"step": step, "data": batches.get_state(), "history": history})
    finally:
        bar.close()
        if ckpt:
            ckpt.wait_until_finished()
            ckpt.close()
    if not history:  # a run shorter than one epoch still reports the model it trained
        history.append({"epoch": 0, "step": step, **evaluate(state)})
    return state, history, step


def to_float_video(video: jax.Array) -> jax.Array:
    """uint8 [0, 255] or float [0, 1] video → float32 [0, 1]."""
    if video.dtype == jnp.uint8:
        return video.astype(jnp.float32) / 255.0
    return video.astype(jnp.float32)


class MetricLog:
    """Appends JSON lines of metrics to `<workdir>/<name>.jsonl` (process 0 only) and keeps them in memory."""

    def __init__(self, workdir: str, name: str = "metrics"):
        self.path = os.path.join(workdir, f"{name}.jsonl")
        self.records: list[dict] = []
        if os.path.exists(self.path):
            with open(self.path, encoding="utf-8") as f:
                self.records = [json.loads(line) for line in f if line.strip()]

    def truncate_after(self, step: int) -> None:
        """Drops records past `step` (a resumed run re-logs the steps after its checkpoint)."""
        self.records = [r for r in self.records if r.get("step", 0) <= step]
        if jax.process_index() == 0:
            self._rewrite()

    def _rewrite(self) -> None:
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            for r in self.records:
                f.write(json.dumps(r) + "\n")
        os.replace(tmp, self.path)

    def write(self, record: Mapping[str, Any]) -> None:
        record = {k: (float(v) if isinstance(v, (np.floating, np.integer, jax.Array)) else v)
                  for k, v in record.items()}
        self.records.append(record)
        if jax.process_index() == 0:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")


def plot_curves(records: Iterable[Mapping[str, Any]], path: str, title: str = "") -> str | None:
    """Plots every numeric series of the records against `step` (one panel per key) to a PNG.

    Returns the path written, or None when there is nothing to plot.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, tuple[list, list]] = {}
    for r in records:
        for k, v in r.items():
            if k in ("step", "epoch", "kind") or not isinstance(v, (int, float)):
                continue
            key = f"{r.get('kind', 'train')}/{k}"
            series.setdefault(key, ([], []))
            series[key][0].append(r["step"])
            series[key][1].append(v)
    if not series:
        return None
    n = len(series)
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    for ax, (key, (xs, ys)) in zip(axes.flat, sorted(series.items())):
        ax.plot(xs, ys, marker="." if len(xs) < 30 else None)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
