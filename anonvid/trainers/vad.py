"""Video anomaly detection trainer: the ConvLSTM autoencoder (STAE) of method B, trained and scored.

METHODS.md section B ("VAD model"). Training sees normal videos only: grey 10-frame windows, MSE reconstruction
loss, Adam(W) lr 1e-4, weight decay 1e-5, batch 4. Scoring slides 10-frame windows with stride 1 over each test
video; a window's cost is the L2 norm of (input − reconstruction) over the whole window; costs are min-max
normalised per video and each window's score goes to its *last* frame; the frame-level ROC-AUC and AP are
pooled over all scored frames of all test videos (`anonvid.metrics`).

Frames without a score. The first `window - 1` frames of a video end no window, so they get no score. They are
left out of the AUC (not given a made-up score) and the result says how many frames were scored and how many
left out, per video and in total. With `window = 10` that is 9 frames per video.

A video whose costs are all equal (max == min) normalises to all zeros rather than dividing by zero.

The train step is a pure function `(state, batch) -> (state, metrics)` jitted once with explicit in/out
shardings (batch on the data axis) and the state donated, as in `classifier.py`; a trace counter fails a
silent recompilation. Scoring is jitted too, on fixed-size batches of windows (the last one padded). With a
`workdir` the state, data position and epoch history are checkpointed (Orbax, `anonvid.checkpointing`) so a
killed run resumes where it stopped and ends with the parameters an uninterrupted run would have.

Optimizer. `core.make_optimizer` with warm-up 0, no clipping and `end_lr_fraction = 1` is Adam with a constant
learning rate and decoupled weight decay 1e-5 on kernels. (The reference Keras code's `Adam(decay=1e-5)` is, in
Keras 2, a learning-rate time decay lr / (1 + 1e-5·step); METHODS.md reads it as weight decay. Either is a
small effect at 50 epochs.)

Plateau. The STAE first learns to output the mean grey level and stays there for a long time (loss = the
data's variance; window costs then track global statistics, not reconstruction). On the synthetic surveillance
videos at 64×64 with widths (32, 16), lstm (16, 8, 16), Adam 1e-3 or 1e-4, it was still there after 2,040 steps
(frame AUC 0.62); at 32×32 it began to leave it after about 800 steps, earlier with fewer ConvLSTM layers
(2026-11-29). Check `curves.png` before trusting a short run's AUC.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx
from jax.experimental import multihost_utils
from tqdm.auto import tqdm

from anonvid import config_defaults, configlib
from anonvid import metrics as M
from anonvid import sharding as shd
from anonvid.data import pipeline
from anonvid.models.registry import build_model
from anonvid.trainers import core

Videos = np.ndarray | Sequence[np.ndarray]

# ----------------------------------------------------------------------------------------------------------
# Inputs: grey conversion, validation, windows.


def to_grey(video: np.ndarray) -> np.ndarray:
    """uint8 RGB frames `(..., 3)` → grey `(..., 1)` with ITU-R 601 luma, exactly as PIL's `convert("L")`.

    PIL computes L = R·299/1000 + G·587/1000 + B·114/1000 in 16-bit fixed point with rounding:
    `(R·19595 + G·38470 + B·7471 + 0x8000) >> 16`. One-channel input is returned as it is.
    """
    video = np.asarray(video)
    if video.dtype != np.uint8:
        raise ValueError(f"to_grey expects uint8 frames; got {video.dtype}")
    if video.shape[-1] == 1:
        return video
    if video.shape[-1] != 3:
        raise ValueError(f"to_grey expects 1 or 3 channels in the last axis; got shape {video.shape}")
    v = video.astype(np.uint32)
    grey = (v[..., 0] * 19595 + v[..., 1] * 38470 + v[..., 2] * 7471 + 0x8000) >> 16
    return grey.astype(np.uint8)[..., None]


def prepare_videos(videos: Videos, *, name: str, window: int) -> list[np.ndarray]:
    """Validates videos and converts them to a list of grey uint8 arrays `(F_i, H, W, 1)`.

    Args:
      videos: uint8 `(V, F, H, W, C)` or a sequence of uint8 `(F_i, H, W, C)` (lengths may differ), C 1 or 3.
      name: what the videos are ("train", "test"), for error messages.
      window: frames per window; every video needs at least this many.

    Returns:
      The grey videos.
    """
    if isinstance(videos, np.ndarray) or hasattr(videos, "shape"):
        arr = np.asarray(videos)
        if arr.ndim != 5:
            raise ValueError(f"{name} videos must be uint8 (V, F, H, W, C) or a list of (F, H, W, C); got shape "
                             f"{arr.shape}")
        videos = list(arr)
    videos = list(videos)
    if not videos:
        raise ValueError(f"{name}: no videos given")
    out, size = [], None
    for i, v in enumerate(videos):
        v = np.asarray(v)
        if v.ndim != 4 or v.shape[-1] not in (1, 3):
            raise ValueError(f"{name} video {i} must be (F, H, W, C) with C 1 (grey) or 3 (RGB); got shape {v.shape}")
        if v.dtype != np.uint8:
            raise ValueError(f"{name} video {i} must be uint8 in [0, 255]; got {v.dtype} (convert float [0, 1] "
                             "frames with np.round(x * 255).astype(np.uint8))")
        if size is None:
            size = v.shape[1:3]
        elif v.shape[1:3] != size:
            raise ValueError(f"{name} video {i} has frames of {v.shape[1]}×{v.shape[2]}, video 0 of "
                             f"{size[0]}×{size[1]}; resize all videos to one size")
        if v.shape[0] < window:
            raise ValueError(f"{name} video {i} has {v.shape[0]} frames, fewer than the {window}-frame window; "
                             f"drop it, use longer videos, or lower cfg.window")
        out.append(to_grey(v))
    return out


def prepare_labels(labels: Any, videos: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Frame labels `(V, F)` or a sequence of `(F_i,)` → list of 0/1 arrays matching the videos' lengths."""
    labels = list(np.asarray(labels)) if hasattr(labels, "shape") else list(labels)
    if len(labels) != len(videos):
        raise ValueError(f"{len(labels)} label rows for {len(videos)} test videos")
    out = []
    for i, (y, v) in enumerate(zip(labels, videos)):
        y = np.asarray(y)
        if y.shape != (len(v),):
            raise ValueError(f"labels of test video {i} have shape {y.shape}; the video has {len(v)} frames")
        if not np.all((y == 0) | (y == 1)):
            raise ValueError(f"labels of test video {i} must be 0/1 frame labels; found {np.unique(y)[:5]}")
        out.append(y.astype(np.uint8))
    return out


class WindowSource:
    """Random-access source of `window`-frame clips, every `stride` frames of every video (a grain source).

    Element i is `{"clip": uint8 (window, H, W, 1)}`; windows are ordered by video, then by start frame.
    """

    def __init__(self, videos: Sequence[np.ndarray], window: int, stride: int = 1, *, name: str = "windows"):
        if window < 1 or stride < 1:
            raise ValueError(f"window ({window}) and stride ({stride}) must be >= 1")
        self.videos = list(videos)
        starts = [np.arange(0, len(v) - window + 1, stride) for v in self.videos]
        self.video_index = np.concatenate([np.full(len(s), i) for i, s in enumerate(starts)]).astype(np.int64)
        self.start = np.concatenate(starts).astype(np.int64)
        self.window = int(window)
        self.name = name

    def __len__(self) -> int:
        return len(self.start)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        v, s = self.video_index[int(index)], self.start[int(index)]
        return {"clip": self.videos[v][s:s + self.window]}


# ----------------------------------------------------------------------------------------------------------
# Jitted steps.


def _reconstruction_error(recon: jax.Array, x: jax.Array) -> jax.Array:
    return jnp.square(recon - x)


def make_train_step(fns: core.ModelFns, tx: optax.GradientTransformation, shardings: Any,
                    batch_sharding: Any, compiler_options: Mapping[str, Any] | None = None) -> Callable:
    """Builds the jitted step `(state, {"clip": uint8 (B, T, H, W, 1)}) -> (state, {"loss", "grad_norm"})`."""

    # Compiled once per shape: a retrace (a batch of another shape or dtype) would silently cost a recompile.
    # A per-step counter rather than `chex.assert_max_traces`, whose counter is global and keyed by the
    # function's source, so a second training run in the same process would trip it.
    traces = []

    def step(state, batch):
        traces.append(1)
        if len(traces) > 1:
            raise RuntimeError(f"vad train step traced {len(traces)} times; batches must keep one shape and dtype")
        x = core.to_float_video(batch["clip"])

        def loss_fn(params):
            model = nnx.merge(fns.train_graph, params, state["batch_stats"], copy=True)
            return jnp.mean(_reconstruction_error(model(x), x))  # MSE over every pixel of every frame

        loss, grads = jax.value_and_grad(loss_fn)(state["params"])
        updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
        params = optax.apply_updates(state["params"], updates)
        new_state = dict(state, step=state["step"] + 1, params=params, opt_state=opt_state)
        return new_state, {"loss": loss, "grad_norm": optax.tree.norm(grads)}

    return jax.jit(step, in_shardings=(shardings, batch_sharding), out_shardings=(shardings, None),
                   donate_argnums=(0,), compiler_options=dict(compiler_options or {}) or None)


def make_cost_fn(fns: core.ModelFns, shardings: Any, batch_sharding: Any,
                 compiler_options: Mapping[str, Any] | None = None) -> Callable:
    """Builds the jitted `(state, {"clip": uint8 (B, T, H, W, 1)}) -> cost (B,)`: ‖x − x̂‖₂ over each window."""

    def cost(state, batch):
        x = core.to_float_video(batch["clip"])
        model = nnx.merge(fns.eval_graph, state["params"], state["batch_stats"])
        return jnp.sqrt(jnp.sum(_reconstruction_error(model(x), x), axis=(1, 2, 3, 4)))

    return jax.jit(cost, in_shardings=(shardings, batch_sharding), out_shardings=batch_sharding,
                   compiler_options=dict(compiler_options or {}) or None)


# ----------------------------------------------------------------------------------------------------------
# Scoring (METHODS.md B).


def window_costs(cost_fn: Callable, state: Any, videos: Sequence[np.ndarray], *, window: int, batch_size: int,
                 batch_sharding: Any = None, progress: bool = False) -> list[np.ndarray]:
    """Reconstruction cost of every `window`-frame window (stride 1) of every video.

    Windows of all videos are cut into fixed-size batches (the last one padded by repeating windows, padding
    dropped afterwards), so `cost_fn` compiles once.

    Args:
      cost_fn: `(state, {"clip": uint8 (B, window, H, W, 1)}) -> (B,)` costs, e.g. from `make_cost_fn`.
      state: the trainer state passed to `cost_fn`.
      videos: grey uint8 videos `(F_i, H, W, 1)` (see `prepare_videos`), each at least `window` frames.
      window: frames per window.
      batch_size: windows per batch (a multiple of the data-parallel size).
      batch_sharding: sharding of a batch (None: default device).
      progress: show a progress bar.

    Returns:
      Per video, a float64 array of `F_i - window + 1` costs; entry s is the window of frames [s, s + window).
    """
    source = WindowSource(videos, window, 1, name="test windows")
    batches = pipeline.make_batches(source, global_batch_size=int(batch_size), seed=0, shuffle=False,
                                    num_epochs=1, drop_remainder=False, sharding=batch_sharding)
    outs = []
    for batch in tqdm(batches, total=len(batches), desc="scoring", disable=not progress, leave=False):
        costs = cost_fn(state, {"clip": batch["clip"]})
        outs.append(np.asarray(multihost_utils.process_allgather(costs, tiled=True)))
    flat = np.concatenate(outs)[:len(source)].astype(np.float64)
    if not np.all(np.isfinite(flat)):
        raise FloatingPointError(f"{int(np.sum(~np.isfinite(flat)))} window costs are NaN/inf; the model "
                                 "diverged (lower optim.lr) or the inputs hold NaN")
    bounds = np.cumsum([0] + [len(v) - window + 1 for v in videos])
    return [flat[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def normalise_costs(costs: np.ndarray) -> np.ndarray:
    """Per-video min-max normalisation to [0, 1]; a constant video (max == min) maps to all zeros."""
    costs = np.asarray(costs, np.float64)
    lo, hi = costs.min(), costs.max()
    if hi == lo:
        return np.zeros_like(costs)
    return (costs - lo) / (hi - lo)


def frame_scores(costs: Sequence[np.ndarray], window: int) -> list[np.ndarray]:
    """Per-frame anomaly scores from per-window costs (stride-1 windows) of each video.

    Each video's costs are min-max normalised (`normalise_costs`) and the score of the window [s, s + window)
    is assigned to its last frame s + window − 1. The first `window − 1` frames end no window: their score is
    NaN, meaning "not scored" (they are left out of the AUC).

    Args:
      costs: per video, `F_i − window + 1` window costs (from `window_costs`).
      window: frames per window.

    Returns:
      Per video, a float64 array of `F_i` scores (NaN on the first `window − 1` frames).
    """
    out = []
    for c in costs:
        c = np.asarray(c, np.float64)
        if c.ndim != 1 or len(c) == 0:
            raise ValueError(f"each video needs a 1-D array of at least one window cost; got shape {c.shape}")
        s = np.full(len(c) + window - 1, np.nan)
        s[window - 1:] = normalise_costs(c)
        out.append(s)
    return out


def pooled_metrics(scores: Sequence[np.ndarray], labels: Sequence[np.ndarray]) -> dict[str, Any]:
    """Frame ROC-AUC and AP over the scored (non-NaN) frames of all videos pooled, with per-video counts."""
    if len(scores) != len(labels):
        raise ValueError(f"{len(scores)} score rows for {len(labels)} label rows")
    per_video, s_all, y_all = [], [], []
    for i, (s, y) in enumerate(zip(scores, labels)):
        s, y = np.asarray(s, np.float64), np.asarray(y)
        if s.shape != y.shape:
            raise ValueError(f"video {i}: {s.shape} scores for {y.shape} labels")
        scored = ~np.isnan(s)
        per_video.append({"frames": int(len(s)), "scored": int(scored.sum()), "excluded": int((~scored).sum()),
                          "anomalous_scored": int(y[scored].sum())})
        s_all.append(s[scored])
        y_all.append(y[scored])
    s_all, y_all = np.concatenate(s_all), np.concatenate(y_all)
    n_pos = int(y_all.sum())
    if n_pos == 0 or n_pos == len(y_all):
        raise ValueError(f"the {len(y_all)} scored frames are all {'normal' if n_pos == 0 else 'anomalous'}: "
                         "frame AUC needs both kinds; test on videos with and without anomalies")
    result = M.frame_auc_and_ap(s_all, y_all)
    return {"auc": result["auc"], "ap": result["ap"], "scored_frames": int(len(s_all)),
            "excluded_frames": int(sum(v["excluded"] for v in per_video)), "anomalous_frames": n_pos,
            "per_video": per_video}


def evaluate_vad(trained: Mapping[str, Any], test_videos: Videos, labels: Any, *, batch_size: int | None = None,
                 progress: bool = False) -> dict[str, Any]:
    """Scores test videos with a trained STAE and computes the pooled frame ROC-AUC and AP.

    Args:
      trained: the dict returned by `train_vad` (uses its "state", "cost_fn", "window", "batch_sharding",
        "eval_batch_size").
      test_videos: uint8 `(V, F, H, W, C)` or a sequence of `(F_i, H, W, C)`; C 1 or 3 (RGB is turned grey).
      labels: 0/1 frame labels, `(V, F)` or a sequence of `(F_i,)`.
      batch_size: windows per scoring batch (default: the config's `eval_batch_size`).
      progress: show a progress bar.

    Returns:
      `{"auc", "ap", "scored_frames", "excluded_frames", "anomalous_frames", "per_video": [{"frames",
      "scored", "excluded", "anomalous_scored"}], "costs": [per-video window costs], "scores": [per-video frame
      scores, NaN where not scored]}`; everything but "costs" and "scores" is JSON-able.
    """
    window = int(trained["window"])
    videos = prepare_videos(test_videos, name="test", window=window)
    ys = prepare_labels(labels, videos)
    costs = window_costs(trained["cost_fn"], trained["state"], videos, window=window,
                         batch_size=int(batch_size or trained["eval_batch_size"]),
                         batch_sharding=trained["batch_sharding"], progress=progress)
    scores = frame_scores(costs, window)
    return {**pooled_metrics(scores, ys), "costs": costs, "scores": scores}


# ----------------------------------------------------------------------------------------------------------
# Training.


def train_vad(cfg: ml_collections.ConfigDict, train_videos: Videos, *, workdir: str | None = None, mesh=None,
              progress: bool = True, desc: str = "") -> dict[str, Any]:
    """Trains the STAE on normal videos to reconstruct their windows.

    An epoch is one pass over all training windows (every `cfg.train_stride` frames of every video, shuffled;
    each epoch in a new order), or `cfg.windows_per_epoch` windows of that endless shuffled stream when it is
    set (> 0), for CPU-sized runs. Only whole batches are used.

    Args:
      cfg: config from `default_config`: `model`, `optim`, `window`, `train_stride`, `windows_per_epoch`,
        `batch_size`, `eval_batch_size`, `epochs`, `seed`, `log_every_steps`, `checkpoint_every_steps`
        (0 = every epoch), `keep_checkpoints`, `sharding`.
      train_videos: normal videos, uint8 `(V, F, H, W, C)` or a sequence of `(F_i, H, W, C)`; C 1 or 3.
      workdir: where checkpoints, `metrics.jsonl` and `curves.png` go; None trains in memory only. A workdir
        holding a checkpoint is resumed.
      mesh: device mesh (default: from `cfg.sharding.mesh`).
      progress: show a progress bar.
      desc: progress-bar label.

    Returns:
      `{"history": [{"epoch", "step", "loss"} per epoch (mean training MSE)], "steps", "state", "fns",
      "cost_fn", "batch_sharding", "window", "eval_batch_size"}`; pass it to `evaluate_vad`.
    """
    window = int(cfg.window)
    if window < 1:
        raise ValueError(f"cfg.window must be >= 1; got {window}")
    videos = prepare_videos(train_videos, name="train", window=window)
    source = WindowSource(videos, window, int(cfg.train_stride), name="train windows")
    mesh, rules = core.mesh_for_batches(cfg, mesh)
    batch_size = int(cfg.batch_size)
    cap = int(cfg.windows_per_epoch or 0)
    per_epoch = min(len(source), cap) if cap > 0 else len(source)
    steps_per_epoch = per_epoch // batch_size
    if steps_per_epoch < 1:
        raise ValueError(f"{per_epoch} training windows per epoch, fewer than one batch of {batch_size}; add "
                         "videos, lower cfg.train_stride or cfg.batch_size")
    total_steps = steps_per_epoch * int(cfg.epochs)

    model = build_model(cfg.model.name, 0, kwargs=cfg.model.kwargs.to_dict(), dtype=cfg.model.dtype,
                        seed=int(cfg.seed))
    tx = core.make_optimizer(cfg.optim, total_steps)
    fns, state, shardings = core.create_state(model, tx, mesh, rules, seed=int(cfg.seed))
    del model
    batch_sh = shd.batch_sharding(mesh, rules)
    options = cfg.compiler_options.to_dict() if "compiler_options" in cfg else None
    train_step = make_train_step(fns, tx, shardings, batch_sh, compiler_options=options)
    batches = pipeline.make_batches(source, global_batch_size=batch_size, seed=int(cfg.seed), shuffle=True,
                                    num_epochs=None, sharding=batch_sh)

    # epoch_losses: losses of the current, unfinished epoch (carried through checkpoints)
    ckpt, log, state, meta = core.open_run(workdir, keep=int(cfg.keep_checkpoints), state=state,
                                           shardings=shardings, batches=batches)
    history: list[dict] = list(meta["history"]) if meta else []
    epoch_losses: list[float] = list(meta["epoch_losses"]) if meta else []

    step = int(state["step"])
    every = int(cfg.checkpoint_every_steps) or steps_per_epoch
    log_every = max(1, int(cfg.log_every_steps))
    bar = tqdm(total=total_steps, initial=step, desc=desc or f"vad {cfg.model.name}", disable=not progress,
               leave=False, dynamic_ncols=True)
    it = iter(batches)
    try:
        while step < total_steps:
            state, out = train_step(state, next(it))
            step += 1
            bar.update(1)
            loss = float(out["loss"])
            if not np.isfinite(loss):
                raise FloatingPointError(f"vad autoencoder: non-finite loss {loss} at step {step}; lower optim.lr "
                                         "or check the inputs")
            epoch_losses.append(loss)
            if step % log_every == 0 or step == total_steps:
                bar.set_postfix(loss=f"{loss:.5f}")
                if log:
                    log.write({"step": step, "kind": "train", "loss": loss, "grad_norm": float(out["grad_norm"])})
            if step % steps_per_epoch == 0:
                record = {"epoch": step // steps_per_epoch, "step": step, "loss": float(np.mean(epoch_losses))}
                history.append(record)
                epoch_losses = []
                if log:
                    log.write({"kind": "epoch", **record})
            if ckpt and (step % every == 0 or step == total_steps):
                ckpt.save(step, state, {"step": step, "data": batches.get_state(), "history": history,
                                        "epoch_losses": epoch_losses})
    finally:
        bar.close()
        if ckpt:
            ckpt.close()
    if log:
        core.plot_curves(log.records, os.path.join(workdir, "curves.png"), title=f"vad: {cfg.model.name}")
    return {"history": history, "steps": step, "state": state, "fns": fns,
            "cost_fn": make_cost_fn(fns, shardings, batch_sh, compiler_options=options), "batch_sharding": batch_sh,
            "window": window, "eval_batch_size": int(cfg.eval_batch_size)}


# ----------------------------------------------------------------------------------------------------------
# Config.


def default_config(smoke: bool = False, **overrides: Any) -> ml_collections.ConfigDict:
    """The STAE config: paper settings (METHODS.md B), or a seconds-long one with `smoke=True`.

    Args:
      smoke: tiny widths, 16 windows per epoch, 1 epoch.
      **overrides: field values; nested fields by dotted name, e.g. `**{"model.kwargs.widths": (32, 16)}`.
        An unknown field raises ValueError listing the known ones.

    Returns:
      A `ConfigDict` with `model` (name "stae", kwargs widths/lstm, dtype), `optim`, `window`, `train_stride`,
      `windows_per_epoch` (0 = all), `batch_size`, `eval_batch_size`, `epochs`, `seed`, `log_every_steps`,
      `checkpoint_every_steps` (0 = every epoch), `keep_checkpoints`, `sharding`, `compiler_options`.
    """
    cfg = ml_collections.ConfigDict()
    kwargs = dict(widths=(8, 8), lstm=(8, 4, 8)) if smoke else dict(widths=(128, 64), lstm=(64, 32, 64))
    cfg.model = ml_collections.ConfigDict(dict(name="stae", kwargs=kwargs, dtype="float32"))
    # Paper: Adam, lr 1e-4, weight decay 1e-5, constant rate (end_lr_fraction 1: the cosine is flat), no clipping.
    cfg.optim = config_defaults.optimizer(lr=1e-4, weight_decay=1e-5, warmup_fraction=0.0, grad_clip=0.0)
    cfg.optim.end_lr_fraction = 1.0
    cfg.window = 10
    cfg.train_stride = 1
    cfg.windows_per_epoch = 16 if smoke else 0
    cfg.batch_size = 4
    cfg.eval_batch_size = 8 if smoke else 16
    cfg.epochs = 1 if smoke else 50
    cfg.seed = 0
    cfg.log_every_steps = 1 if smoke else 10
    cfg.checkpoint_every_steps = 0
    cfg.keep_checkpoints = 2
    cfg.sharding = config_defaults.sharding()
    # `jax.jit` compiler options: level 0 roughly halves a smoke run's compile time (it is all compile)
    cfg.compiler_options = ml_collections.ConfigDict({"xla_backend_optimization_level": 0} if smoke else {})
    configlib.set_fields(cfg, overrides)
    return cfg
