"""Trainer of the dual-token pruning ViT (METHODS.md A): action CE + privacy BCE, adversarial or cooperative.

    L = CE(action head on act_CLS, action label) + w · BCE(privacy head on priv_CLS, privacy attributes)

The privacy branch runs in one of two modes (`privacy_mode`):
- `adversarial` (the reference code): a gradient-reversal layer sits between the normalised privacy CLS and the
  privacy head. The head learns to recognise the attributes; the backbone receives −λ_grl × its gradient, so it
  is pushed to hide them. λ_grl follows the DANN ramp 2/(1 + exp(−γp)) − 1 over the run's progress p ∈ [0, 1].
- `cooperative` (how the abstract reads): plain BCE; the privacy CLS learns where the privacy cues are, and
  the score α_act − λ_priv·α_priv prunes what it looks at.

AdamW (no decay on biases and norms) with linear warm-up then one cosine over the whole run; clip augmentation
identical for all frames of a clip (`anonvid.data.augment`); stochastic depth from the model config. The step is
one jitted pure function with explicit shardings and a donated state; with a `workdir`, Orbax checkpoints and
the data position make a killed run resume where it stopped. Each epoch evaluates on the full test split:
action top-1, the model's own privacy-head cMAP, and — when the split carries per-pixel `privacy_mask` ground
truth (the synthetic benchmark) — how well the first pruning stage's score finds the privacy cues: the AUROC
of −score against "tubelet privacy fraction > 0.5", and the fraction of privacy tubelets that survive pruning.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx
from jax.experimental import multihost_utils

from anonvid import config_defaults, configlib
from anonvid import metrics as M
from anonvid import sharding as shd
from anonvid.data import augment, pipeline, synthetic
from anonvid.models.registry import build_model
from anonvid.trainers import core

PRIVACY_MODES = ("adversarial", "cooperative")
CONFIG_FILE = "pruner_config.json"  # what `load_pruner` rebuilds the model and optimizer from


def dann_coefficient(progress, gamma: float = 10.0):
    """The DANN gradient-reversal ramp 2/(1 + exp(−γ·p)) − 1 (0 at the start, → 1 at the end)."""
    return 2.0 / (1.0 + jnp.exp(-gamma * jnp.asarray(progress, jnp.float32))) - 1.0


def default_config(smoke: bool = False, **overrides: Any) -> ml_collections.ConfigDict:
    """The pruner's training config (paper settings, METHODS.md A, at the tiny CPU variant's size).

    Args:
      smoke: a seconds-long config (1 epoch, depth 2, width 32).
      **overrides: field values; nested fields by dotted name, e.g. `**{"model.kwargs.dim": 96}`.

    Returns:
      A `ConfigDict` with `model` (name "dual_vit", kwargs = `DualViTConfig` fields incl. `variant`, dtype),
      `privacy_mode`, `privacy_weight`, `grl_gamma`, `augment` (`ClipAugment` fields), `optim`, `epochs`,
      `batch_size`, `eval_batch_size`, `seed`, `log_every_steps`, `checkpoint_every_steps`, `keep_checkpoints`,
      `sharding`.
    """
    cfg = ml_collections.ConfigDict()
    # The synthetic benchmark's 8×32² clips in 2×4×4 tubelets: 4×8×8 = 256 tokens, a person ≈ 2×5 tubelets.
    kwargs = dict(variant="tiny", dim=64, depth=4, num_heads=2, num_frames=8, image_size=(32, 32),
                  tubelet=(2, 4, 4), drop_path_rate=0.0, prune_blocks=(2, 3, 4), keep_rates=(0.9, 0.9, 0.9),
                  lambda_priv=0.5, fuse=True, temporal_strict=False, motion_input=False)
    if smoke:
        kwargs.update(dim=32, depth=2, prune_blocks=(1, 2), keep_rates=(0.9, 0.9))
    cfg.model = ml_collections.ConfigDict(dict(name="dual_vit", kwargs=kwargs, dtype="float32"))
    cfg.privacy_mode = "adversarial"
    cfg.privacy_weight = 1.0
    cfg.grl_gamma = 10.0
    cfg.augment = ml_collections.ConfigDict(dict(crop_scale=(0.6, 1.0), crop_ratio=(3 / 4, 4 / 3), flip=True,
                                                 jitter=0.1, erase_prob=0.25, erase_area=(0.02, 0.2)))
    # Paper: AdamW lr 1e-4, weight decay 0.05, 5 warm-up epochs of 80 then cosine, batch 8.
    cfg.optim = config_defaults.optimizer(lr=1e-4, weight_decay=0.05, warmup_fraction=5 / 80, grad_clip=0.0)
    cfg.epochs = 1 if smoke else 80
    cfg.batch_size = 8
    cfg.eval_batch_size = 8 if smoke else 32
    cfg.seed = 0
    cfg.log_every_steps = 1 if smoke else 10
    cfg.checkpoint_every_steps = 0
    cfg.keep_checkpoints = 2
    cfg.sharding = config_defaults.sharding()
    # XLA compiler options of the train and eval steps, e.g. {"xla_backend_optimization_level": 0} to halve
    # CPU compile time of short runs (tests, smoke checks) at some cost in step time.
    cfg.compiler_options = ml_collections.ConfigDict()
    configlib.set_fields(cfg, overrides)
    return cfg


def check_config(cfg: Mapping[str, Any]) -> None:
    """Raises a clear error for a bad privacy mode, weight or augmentation before anything is built."""
    if cfg["privacy_mode"] not in PRIVACY_MODES:
        raise ValueError(f"privacy_mode {cfg['privacy_mode']!r} is not one of {PRIVACY_MODES}")
    if float(cfg["privacy_weight"]) < 0:
        raise ValueError(f"privacy_weight must be >= 0; got {cfg['privacy_weight']}")
    if cfg["model"]["name"] != "dual_vit":
        raise ValueError(f"the pruner trainer trains model 'dual_vit'; got {cfg['model']['name']!r}")
    augment.ClipAugment.from_config(cfg["augment"])


def make_train_step(fns: core.ModelFns, tx: optax.GradientTransformation, shardings: Any, batch_sharding: Any, *,
                    privacy_mode: str, privacy_weight: float, grl_gamma: float, total_steps: int,
                    clip_augment: augment.ClipAugment | None,
                    compiler_options: Mapping[str, Any] | None = None) -> Callable:
    """The jitted step `(state, batch) -> (state, metrics)`; batch has `video`, `action`, `privacy`.

    Metrics: `loss`, `action_loss`, `privacy_loss`, `grl` (the reversal coefficient; 0 when cooperative) and
    `grad_norm`.
    """
    if privacy_mode not in PRIVACY_MODES:
        raise ValueError(f"privacy_mode {privacy_mode!r} is not one of {PRIVACY_MODES}")
    traces = []

    def step(state, batch):
        traces.append(1)  # one shape, one compile: a retrace would silently recompile
        if len(traces) > 1:
            raise RuntimeError(f"train step traced {len(traces)} times; batches must keep one shape and dtype")
        key = jax.random.fold_in(jax.random.wrap_key_data(state["rng"]), state["step"])
        k_aug, k_drop = jax.random.split(key)
        x = core.to_float_video(batch["video"])
        if clip_augment is not None:
            x = augment.augment_clips(k_aug, x, clip_augment)
        progress = state["step"].astype(jnp.float32) / max(total_steps - 1, 1)
        grl = dann_coefficient(progress, grl_gamma) if privacy_mode == "adversarial" else jnp.zeros(())

        def loss_fn(params):
            model = nnx.merge(fns.train_graph, params, state["batch_stats"], copy=True)
            out, _ = model(x, train=True, key=k_drop, privacy_grl=grl if privacy_mode == "adversarial" else None)
            ce = optax.softmax_cross_entropy_with_integer_labels(out["action"], batch["action"]).mean()
            bce = optax.sigmoid_binary_cross_entropy(out["privacy"], batch["privacy"].astype(jnp.float32)).mean()
            return ce + privacy_weight * bce, (ce, bce)

        (loss, (ce, bce)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["params"])
        updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
        params = optax.apply_updates(state["params"], updates)
        new_state = dict(state, step=state["step"] + 1, params=params, opt_state=opt_state)
        return new_state, {"loss": loss, "action_loss": ce, "privacy_loss": bce, "grl": grl,
                           "grad_norm": optax.tree.norm(grads)}

    return jax.jit(step, in_shardings=(shardings, batch_sharding), out_shardings=(shardings, None),
                   donate_argnums=(0,), compiler_options=dict(compiler_options or {}) or None)


def make_eval_step(fns: core.ModelFns, shardings: Any, batch_sharding: Any,
                   compiler_options: Mapping[str, Any] | None = None) -> Callable:
    """The jitted `(state, video) -> {"action", "privacy", "kept_ids", "scores{s}", "score_ids{s}"}` (per stage)."""

    def step(state, video):
        model = nnx.merge(fns.eval_graph, state["params"], state["batch_stats"])
        out, aux = model(core.to_float_video(video))
        stages = {f"{k}{s}": v for k in ("scores", "score_ids") for s, v in enumerate(aux[k], start=1)}
        return {**out, "kept_ids": aux["kept_ids"], **stages}

    return jax.jit(step, in_shardings=(shardings, batch_sharding), out_shardings=batch_sharding,
                   compiler_options=dict(compiler_options or {}) or None)


def _predict(eval_step: Callable, state: Any, video: np.ndarray, *, batch_size: int, batch_sharding: Any) -> dict:
    """Runs the eval step over all clips (last batch padded to one compiled shape) and gathers numpy outputs."""
    n = len(video)
    source = pipeline.ArraySource({"video": video}, name="test split")
    batches = pipeline.make_batches(source, global_batch_size=batch_size, seed=0, shuffle=False, num_epochs=1,
                                    drop_remainder=False, sharding=batch_sharding)
    parts: dict[str, list] = {}
    for batch in batches:
        out = eval_step(state, batch["video"])
        for k, v in out.items():
            parts.setdefault(k, []).append(np.asarray(multihost_utils.process_allgather(v, tiled=True)))
    return {k: np.concatenate(v)[:n] for k, v in parts.items()}


def score_quality(stage_scores: Sequence[np.ndarray], stage_ids: Sequence[np.ndarray], privacy_mask: np.ndarray,
                  kept_ids: np.ndarray, tubelet: Sequence[int]) -> dict[str, float]:
    """How well the pruning scores and the final kept set separate privacy tubelets from the rest.

    A privacy tubelet is one whose privacy fraction (share of its pixels showing a privacy cue) exceeds 0.5.

    Args:
      stage_scores: per pruning stage `(N, n_s)` scores of the tubelets entering it (stage 1 scores all).
      stage_ids: per stage `(N, n_s)` global ids of those tubelets.
      privacy_mask: `(N, T, H, W)` per-pixel privacy bits (non-zero = a privacy cue is visible).
      kept_ids: `(N, K)` global ids of the tubelets kept by every stage.
      tubelet: (t, p, q).

    Returns:
      `score_auroc`: AUROC of −score at the first stage (all tubelets); `score_auroc_stage{s}`: the same over the
      tubelets entering stage s ≥ 2; `prune_order_auroc`: AUROC of the order in which pruning drops tubelets
      (earlier stage first, lower score first within a stage; survivors last), i.e. how privacy-first the whole
      cascade prunes; `privacy_kept` / `other_kept`: fractions of privacy / other tubelets kept. NaN where a
      class is empty.
    """
    n = len(kept_ids)
    positive = synthetic.tubelet_privacy_fraction(privacy_mask, tuple(tubelet)).reshape(n, -1) > 0.5
    both = positive.any() and (~positive).any()
    nan = float("nan")
    kept = np.zeros(positive.shape, bool)
    np.put_along_axis(kept, kept_ids.astype(np.int64), True, axis=1)
    result = {}
    # order value: stage index s (1-based) + the score's rank among the tubelets entering stage s, scaled to [0, 1)
    order = np.full(positive.shape, float(len(stage_scores) + 1))
    for s, (scores, ids) in enumerate(zip(stage_scores, stage_ids), start=1):
        scores, ids = np.asarray(scores, np.float64), np.asarray(ids, np.int64)
        labels = np.take_along_axis(positive, ids, axis=1)
        if s == 1:
            result["score_auroc"] = M.roc_auc(-scores.ravel(), labels.ravel()) if both else nan
        elif labels.any() and (~labels).any():
            result[f"score_auroc_stage{s}"] = M.roc_auc(-scores.ravel(), labels.ravel())
        ranks = np.argsort(np.argsort(scores, axis=1), axis=1) / scores.shape[1]
        value = np.zeros(positive.shape)
        np.put_along_axis(value, ids, s + ranks, axis=1)
        order = np.where(_dropped_at(s, stage_ids, positive.shape, kept), value, order)
    result["prune_order_auroc"] = M.roc_auc(-order.ravel(), positive.ravel()) if both else nan
    result["privacy_kept"] = float(kept[positive].mean()) if positive.any() else nan
    result["other_kept"] = float(kept[~positive].mean()) if (~positive).any() else nan
    return result


def _dropped_at(stage: int, stage_ids: Sequence[np.ndarray], shape: tuple[int, int], kept: np.ndarray) -> np.ndarray:
    """`(N, n)` True for tubelets that enter `stage` (1-based) but not the next stage (or the final kept set)."""
    entering = np.zeros(shape, bool)
    np.put_along_axis(entering, np.asarray(stage_ids[stage - 1], np.int64), True, axis=1)
    if stage < len(stage_ids):
        after = np.zeros(shape, bool)
        np.put_along_axis(after, np.asarray(stage_ids[stage], np.int64), True, axis=1)
    else:
        after = kept
    return entering & ~after


def evaluate(eval_step: Callable, state: Any, data: Mapping[str, np.ndarray], *, batch_size: int,
             batch_sharding: Any, tubelet: tuple[int, int, int], num_tubelets: int) -> dict[str, float]:
    """Action top-1, the model's own privacy cMAP/F1, the kept fraction of tubelets and (with `privacy_mask`)
    the score's privacy AUROC (`score_quality`)."""
    pred = _predict(eval_step, state, np.asarray(data["video"]), batch_size=batch_size,
                    batch_sharding=batch_sharding)
    result = {"top1": M.top1_accuracy(pred["action"], data["action"])}
    probs = 1.0 / (1.0 + np.exp(-pred["privacy"].astype(np.float64)))
    result.update(privacy_cmap=M.cmap(probs, data["privacy"]), privacy_f1=M.macro_f1(probs, data["privacy"]))
    stages = sum(1 for k in pred if k.startswith("scores"))
    if "privacy_mask" in data and stages:
        result.update(score_quality([pred[f"scores{s}"] for s in range(1, stages + 1)],
                                    [pred[f"score_ids{s}"] for s in range(1, stages + 1)],
                                    np.asarray(data["privacy_mask"]), pred["kept_ids"], tubelet))
    result["kept_fraction"] = pred["kept_ids"].shape[1] / num_tubelets
    return result


def _validate(data: Mapping[str, np.ndarray], name: str, num_classes: int, num_attributes: int) -> int:
    for key in ("video", "action", "privacy"):
        if key not in data:
            raise ValueError(f"{name} split has no {key!r} array; it has {sorted(data)}")
    video = np.asarray(data["video"]) if not hasattr(data["video"], "shape") else data["video"]
    n = len(video)
    if n == 0:
        raise ValueError(f"{name} split is empty")
    if video.ndim != 5 or video.shape[-1] != 3 or video.dtype not in (np.uint8, np.float32):
        raise ValueError(f"{name} 'video' must be uint8 or float32 clips (N, T, H, W, 3); got {video.shape} "
                         f"{video.dtype}")
    if data["action"].shape != (n,) or data["privacy"].shape != (n, num_attributes):
        raise ValueError(f"{name}: expected action labels ({n},) and privacy labels ({n}, {num_attributes}); got "
                         f"{data['action'].shape} and {data['privacy'].shape}")
    if data["action"].min() < 0 or data["action"].max() >= num_classes:
        raise ValueError(f"{name}: action labels must be in 0..{num_classes - 1}")
    return n


def build(cfg: Mapping[str, Any], num_classes: int, num_attributes: int, total_steps: int, mesh=None):
    """Builds the model, optimizer, sharded state and shardings of a pruner run.

    Returns:
      `(model_config, fns, tx, state, shardings, mesh, rules)`; `model_config` is the `DualViTConfig`.
    """
    check_config(cfg)
    mesh, rules = core.mesh_for_batches(cfg, mesh)
    kwargs = dict(cfg["model"]["kwargs"])
    kwargs["num_attributes"] = num_attributes
    model = build_model("dual_vit", num_classes, kwargs=kwargs, dtype=cfg["model"]["dtype"], seed=int(cfg["seed"]))
    model_config = model.config
    tx = core.make_optimizer(cfg["optim"], total_steps)
    fns, state, shardings = core.create_state(model, tx, mesh, rules, seed=int(cfg["seed"]))
    return model_config, fns, tx, state, shardings, mesh, rules


def train_pruner(cfg: ml_collections.ConfigDict, train: Mapping[str, np.ndarray], test: Mapping[str, np.ndarray],
                 *, num_classes: int, num_attributes: int, workdir: str | None = None, mesh=None,
                 progress: bool = True, desc: str = "") -> dict[str, Any]:
    """Trains the dual-token pruning ViT and evaluates it on the full test split after every epoch.

    Args:
      cfg: the pruner config (`default_config`).
      train, test: splits with `video` (uint8 or float32 (N, T, H, W, 3)), `action` (N,), `privacy` (N, A);
        optionally `privacy_mask` (N, T, H, W) on test for the score-quality metrics.
      num_classes, num_attributes: head sizes.
      workdir: checkpoints, `metrics.jsonl`, `curves.png` and `pruner_config.json` (what `load_pruner` reads);
        None trains in memory only.
      mesh: device mesh (default: from `cfg.sharding.mesh`).
      progress: show a progress bar.
      desc: progress-bar label.

    Returns:
      `{"history", "final", "steps", "state", "fns", "model_config"}`.
    """
    n_train = _validate(train, "train", num_classes, num_attributes)
    _validate(test, "test", num_classes, num_attributes)
    batch_size = int(cfg.batch_size)
    if n_train < batch_size:
        raise ValueError(f"train split has {n_train} clips, fewer than one batch of {batch_size}")
    steps_per_epoch = n_train // batch_size
    total_steps = steps_per_epoch * int(cfg.epochs)
    model_config, fns, tx, state, shardings, mesh, rules = build(cfg, num_classes, num_attributes, total_steps,
                                                                 mesh)
    video_shape = tuple(train["video"].shape[1:4])
    if video_shape != (model_config.num_frames, *model_config.image_size):
        raise ValueError(f"clips are {video_shape} (T, H, W) but the model is built for "
                         f"{(model_config.num_frames, *model_config.image_size)}; set model.kwargs.num_frames / "
                         f"image_size to match the data")
    batch_sh = shd.batch_sharding(mesh, rules)
    train_step = make_train_step(fns, tx, shardings, batch_sh, privacy_mode=cfg.privacy_mode,
                                 privacy_weight=float(cfg.privacy_weight), grl_gamma=float(cfg.grl_gamma),
                                 total_steps=total_steps,
                                 clip_augment=augment.ClipAugment.from_config(cfg.augment.to_dict()),
                                 compiler_options=cfg.compiler_options.to_dict())
    eval_step = make_eval_step(fns, shardings, batch_sh, compiler_options=cfg.compiler_options.to_dict())
    batches = pipeline.make_batches(pipeline.ArraySource({k: train[k] for k in ("video", "action", "privacy")}),
                                    global_batch_size=batch_size, seed=int(cfg.seed), shuffle=True, num_epochs=None,
                                    sharding=batch_sh)
    if workdir:
        os.makedirs(workdir, exist_ok=True)
        with open(os.path.join(workdir, CONFIG_FILE), "w", encoding="utf-8") as f:
            json.dump({"config": cfg.to_dict(), "num_classes": num_classes, "num_attributes": num_attributes,
                       "total_steps": total_steps}, f, indent=1, default=list)
    ckpt, log, state, meta = core.open_run(workdir, keep=int(cfg.keep_checkpoints), state=state,
                                           shardings=shardings, batches=batches)
    history: list[dict] = list(meta["history"]) if meta else []
    state, history, step = core.train_loop(
        train_step, state, batches, total_steps=total_steps, steps_per_epoch=steps_per_epoch,
        evaluate=lambda st: evaluate(eval_step, st, test, batch_size=int(cfg.eval_batch_size),
                                     batch_sharding=batch_sh, tubelet=model_config.tubelet,
                                     num_tubelets=model_config.num_tubelets),
        history=history, ckpt=ckpt, log=log, log_every=int(cfg.log_every_steps),
        checkpoint_every=int(cfg.checkpoint_every_steps), name="pruner", desc=desc or f"pruner ({cfg.privacy_mode})",
        progress=progress)
    if log:
        core.plot_curves(log.records, os.path.join(workdir, "curves.png"), title=f"pruner ({cfg.privacy_mode})")
    return {"history": history, "final": history[-1], "steps": step, "state": state, "fns": fns,
            "model_config": model_config}


def load_pruner(workdir: str, *, step: int | None = None) -> nnx.Module:
    """The trained `DualViT` of a `train_pruner` run, restored from `workdir`'s checkpoint (latest by default).

    Raises a clear error when the folder holds no finished pruner run.
    """
    from anonvid.checkpointing import Checkpointer

    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{workdir!r} holds no pruner run ({CONFIG_FILE} is missing); train one with "
                                f"`anonvid train --config configs/pruning.py:synthetic --workdir ...`")
    with open(path, encoding="utf-8") as f:
        saved = json.load(f)
    cfg = ml_collections.ConfigDict(saved["config"])
    cfg.sharding.mesh = (("data", 1), ("model", 1))  # restore on one device, whatever the training mesh was
    cfg.batch_size = cfg.eval_batch_size = 1
    _, fns, _, state, shardings, _, _ = build(cfg, saved["num_classes"], saved["num_attributes"],
                                              int(saved["total_steps"]), mesh=None)
    ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), keep=int(cfg.keep_checkpoints))
    if ckpt.latest_step() is None:
        raise FileNotFoundError(f"{workdir!r} has no checkpoint yet; finish (or resume) its training first")
    state, _ = ckpt.restore(core.abstract_like(state, shardings), step=step)
    ckpt.close()
    return nnx.merge(fns.eval_graph, state["params"], state["batch_stats"])
