"""Supervised clip classifier trainer: the fresh action model and the fresh privacy attacker.

One recipe serves both roles of the fresh-attacker protocol:
- `task="action"`: single-label softmax cross-entropy, reported as top-1 (clip-level, and video-level when the
  test split carries `video_id`);
- `task="privacy"`: multi-label sigmoid BCE over the privacy attributes, reported as cMAP (%) and macro-F1.

The step is a pure function `(state, batch) -> (state, metrics)` jitted once with explicit in/out shardings and
the state donated; evaluation runs every epoch on the *full* test split (padded to whole batches, padding
masked out). With a `workdir`, the state and the data position are checkpointed so that a killed run resumes
where it stopped and ends where an uninterrupted run would.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx
from jax.experimental import multihost_utils

from anonvid import metrics as M
from anonvid import sharding as shd
from anonvid.data import pipeline
from anonvid.models.registry import build_model
from anonvid.trainers import core

TASKS = ("action", "privacy")


def _loss(task: str, logits: jax.Array, labels: jax.Array) -> jax.Array:
    if task == "action":
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    return optax.sigmoid_binary_cross_entropy(logits, labels.astype(logits.dtype)).mean()


def sample_frames(x: jax.Array, count: int, key: jax.Array) -> jax.Array:
    """`count` distinct frames of every clip in `x` (B, T, ...), kept in temporal order (same indices per batch).

    Per-frame models (the 2-D attacker) see every frame at evaluation; training on a few random frames per clip
    costs a fraction of the compute and, since frames of a clip share their labels, loses little signal.
    """
    if not count or count >= x.shape[1]:
        return x
    idx = jnp.sort(jax.random.choice(key, x.shape[1], (count,), replace=False))
    return jnp.take(x, idx, axis=1)


def make_train_step(fns: core.ModelFns, tx: optax.GradientTransformation, task: str, shardings: Any,
                    batch_sharding: Any, input_key: str, label_key: str, train_frames: int = 0,
                    compiler_options: Mapping[str, Any] | None = None) -> Callable:
    """Builds the jitted training step `(state, batch) -> (state, {"loss", "grad_norm"})`.

    `compiler_options` go to `jax.jit` (smoke configs use XLA backend optimisation level 0: their runs are all
    compile time).
    """

    traces = []

    def step(state, batch):
        # Compiled once per shape: a retrace (e.g. a ragged last batch) would silently cost a recompile.
        traces.append(1)
        if len(traces) > 1:
            raise RuntimeError(f"train step traced {len(traces)} times; batches must keep one shape and dtype")
        key = jax.random.fold_in(jax.random.wrap_key_data(state["rng"]), state["step"])
        x = sample_frames(core.to_float_video(batch[input_key]), train_frames, key)
        labels = batch[label_key]

        def loss_fn(params):
            model = nnx.merge(fns.train_graph, params, state["batch_stats"], copy=True)
            logits = model(x)
            return _loss(task, logits, labels), nnx.state(model, nnx.BatchStat)

        (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["params"])
        updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
        params = optax.apply_updates(state["params"], updates)
        new_state = dict(state, step=state["step"] + 1, params=params, batch_stats=batch_stats,
                         opt_state=opt_state)
        return new_state, {"loss": loss, "grad_norm": optax.tree.norm(grads)}

    return jax.jit(step, in_shardings=(shardings, batch_sharding), out_shardings=(shardings, None),
                   donate_argnums=(0,), compiler_options=dict(compiler_options or {}) or None)


def make_eval_step(fns: core.ModelFns, shardings: Any, batch_sharding: Any, input_key: str,
                   compiler_options: Mapping[str, Any] | None = None) -> Callable:
    """Builds the jitted evaluation step `(state, batch) -> logits` (BatchNorm in inference mode)."""

    def step(state, batch):
        model = nnx.merge(fns.eval_graph, state["params"], state["batch_stats"])
        return model(core.to_float_video(batch[input_key]))

    return jax.jit(step, in_shardings=(shardings, batch_sharding), out_shardings=batch_sharding,
                   compiler_options=dict(compiler_options or {}) or None)


def evaluate(eval_step: Callable, state: Any, data: Mapping[str, np.ndarray], *, batch_size: int,
             batch_sharding: Any, task: str, label_key: str, input_key: str = "video") -> dict[str, float]:
    """Runs the model over the whole split and computes the task's metrics with `anonvid.metrics`.

    The last batch is padded to full size (one compiled shape); padded rows are dropped before the metrics.
    """
    n = len(data[label_key])
    batches = pipeline.make_batches(pipeline.ArraySource({k: data[k] for k in (input_key, label_key)},
                                                         name="test split"), global_batch_size=batch_size,
                                    seed=0, shuffle=False, num_epochs=1, drop_remainder=False,
                                    sharding=batch_sharding)
    outs = []
    for batch in batches:
        logits = eval_step(state, batch)
        outs.append(np.asarray(multihost_utils.process_allgather(logits, tiled=True)))
    logits = np.concatenate(outs)[:n].astype(np.float64)
    labels = np.asarray(data[label_key])
    if task == "action":
        result = {"top1": M.top1_accuracy(logits, labels),
                  "loss": float(np.mean(-_log_softmax(logits)[np.arange(n), labels]))}
        if "video_id" in data:
            result["video_top1"] = M.video_top1_accuracy(logits, data["video_id"], labels)
        return result
    probs = 1.0 / (1.0 + np.exp(-logits))
    return {"cmap": M.cmap(probs, labels), "f1": M.macro_f1(probs, labels),
            "loss": float(np.mean(_bce(logits, labels)))}


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _bce(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))


def _validate(data: Mapping[str, np.ndarray], name: str, input_key: str, label_key: str, task: str) -> int:
    for key in (input_key, label_key):
        if key not in data:
            raise ValueError(f"{name} split has no {key!r} array; it has {sorted(data)}")
    n = len(data[input_key])
    if n == 0:
        raise ValueError(f"{name} split is empty: nothing to train or evaluate on")
    video = data[input_key]
    if video.ndim != 5 or video.shape[-1] != 3:
        raise ValueError(f"{name} {input_key!r} must be clips (N, T, H, W, 3); got shape {video.shape}")
    if video.dtype not in (np.uint8, np.float32):
        raise ValueError(f"{name} {input_key!r} must be uint8 or float32; got {video.dtype}")
    labels = data[label_key]
    if len(labels) != n:
        raise ValueError(f"{name}: {len(labels)} labels for {n} clips")
    if task == "privacy" and labels.ndim != 2:
        raise ValueError(f"{name}: privacy labels must be (N, attributes); got {labels.shape}")
    if task == "action" and labels.ndim != 1:
        raise ValueError(f"{name}: action labels must be (N,); got {labels.shape}")
    return n


def train_classifier(cfg: ml_collections.ConfigDict, train: Mapping[str, np.ndarray],
                     test: Mapping[str, np.ndarray], *, task: str, num_outputs: int, workdir: str | None = None,
                     input_key: str = "video", label_key: str | None = None, mesh=None,
                     progress: bool = True, desc: str = "", evaluate_only: bool = False) -> dict[str, Any]:
    """Trains a fresh classifier and evaluates it on the full test split after every epoch.

    Args:
      cfg: classifier config: `model` (name, kwargs, dtype), `optim`, `batch_size`, `eval_batch_size`,
        `epochs`, `seed`, `checkpoint_every_steps`, `keep_checkpoints`, `sharding` (mesh, rules), optional
        `train_frames` (train on that many random frames per clip; evaluation always sees all frames).
      train: training split, arrays with a leading example axis (`video` uint8 (N,T,H,W,3) and labels).
      test: test split, same keys (optionally `video_id` for video-level top-1).
      task: "action" (softmax CE, top-1) or "privacy" (sigmoid BCE, cMAP and F1).
      num_outputs: classes (action) or attributes (privacy).
      workdir: where checkpoints, `metrics.jsonl` and `curves.png` go; None trains in memory only.
      input_key: key of the clips in the splits.
      label_key: key of the labels (default: "action" or "privacy" by task).
      mesh: device mesh (default: from `cfg.sharding.mesh`).
      progress: show a progress bar.
      desc: progress-bar label.
      evaluate_only: restore `workdir`'s last checkpoint and evaluate it on `test` without training; returns
        `{"final": metrics, "steps": the checkpoint's step}` (FileNotFoundError when there is no checkpoint).

    Returns:
      `{"history": [per-epoch eval dicts], "final": last epoch's eval, "best": best epoch by the task's
      leakage/utility criterion, "steps": total steps}`. For privacy, "best" is the epoch with the highest
      cMAP (the attacker's best epoch, i.e. the worst case for privacy); for action, the highest top-1.
    """
    if task not in TASKS:
        raise ValueError(f"task {task!r} is not one of {TASKS}")
    label_key = label_key or task
    n_train = _validate(train, "train", input_key, label_key, task)
    _validate(test, "test", input_key, label_key, task)
    mesh, rules = core.mesh_for_batches(cfg, mesh)
    batch_size = int(cfg.batch_size)
    if n_train < batch_size:
        raise ValueError(f"train split has {n_train} clips, fewer than one batch of {batch_size}")
    steps_per_epoch = n_train // batch_size
    total_steps = steps_per_epoch * int(cfg.epochs)

    model = build_model(cfg.model.name, num_outputs, kwargs=cfg.model.kwargs.to_dict(), dtype=cfg.model.dtype,
                        seed=int(cfg.seed))
    tx = core.make_optimizer(cfg.optim, total_steps)
    fns, state, shardings = core.create_state(model, tx, mesh, rules, seed=int(cfg.seed))
    del model
    batch_sh = shd.batch_sharding(mesh, rules)
    options = cfg.compiler_options.to_dict() if "compiler_options" in cfg else None
    train_step = make_train_step(fns, tx, task, shardings, batch_sh, input_key, label_key,
                                 train_frames=int(cfg.get("train_frames", 0)), compiler_options=options)
    eval_step = make_eval_step(fns, shardings, batch_sh, input_key, compiler_options=options)

    keys = (input_key, label_key)
    batches = pipeline.make_batches(pipeline.ArraySource({k: train[k] for k in keys}),
                                    global_batch_size=batch_size, seed=int(cfg.seed), shuffle=True,
                                    num_epochs=None, sharding=batch_sh)
    ckpt, log, state, meta = core.open_run(workdir, keep=int(cfg.keep_checkpoints), state=state,
                                           shardings=shardings, batches=batches)
    history: list[dict] = list(meta["history"]) if meta else []
    if evaluate_only:
        ckpt.close()
        if meta is None:
            raise FileNotFoundError(f"{workdir!r} has no checkpoint to evaluate; train it first with `anonvid "
                                    f"train` and the same --config")
        final = evaluate(eval_step, state, test, batch_size=int(cfg.eval_batch_size), batch_sharding=batch_sh,
                         task=task, label_key=label_key, input_key=input_key)
        return {"final": final, "steps": int(meta["step"])}

    state, history, step = core.train_loop(
        train_step, state, batches, total_steps=total_steps, steps_per_epoch=steps_per_epoch,
        evaluate=lambda st: evaluate(eval_step, st, test, batch_size=int(cfg.eval_batch_size),
                                     batch_sharding=batch_sh, task=task, label_key=label_key, input_key=input_key),
        history=history, ckpt=ckpt, log=log, log_every=int(cfg.log_every_steps),
        checkpoint_every=int(cfg.checkpoint_every_steps), name=f"{task} classifier",
        desc=desc or f"{task} {cfg.model.name}", progress=progress)
    if log:
        core.plot_curves(log.records, os.path.join(workdir, "curves.png"), title=f"{task}: {cfg.model.name}")
    criterion = "top1" if task == "action" else "cmap"
    best = max(history, key=lambda r: r[criterion])
    return {"history": history, "final": history[-1], "best": best, "steps": step, "state": state,
            "fns": fns}
