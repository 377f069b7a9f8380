"""Minimax trainer of the penalty-driven anonymizer (METHODS.md C; SPAct lineage + the utility budget).

Three networks, three optax states, one joint state pytree:

- f_A, the UNet++ anonymizer (per frame), starting from an identity-pretrained export;
- f_T, the action model (R3D) on anonymized clips, cross-entropy L_T;
- f_B, the self-supervised privacy branch (ResNet + projection head) on anonymized images, NT-Xent L_B on two
  augmented views (temperature 0.1) — no privacy labels.

Training alternates per batch (each a pure jitted function with explicit shardings and a donated state):

    step 1 (`anonymizer_step`): update f_A only on  L_T − ω·L_B + λ·max(0, D − B)
            with f_T and f_B frozen in inference mode; D = RMS(x − f_A(x)) over the batch ("pixel"), or the RMS
            distance between f_T's features of the raw and the anonymized clip ("feature");
    step 2 (`branches_step`), on the next batch: update f_T on L_T and f_B on L_B with f_A frozen.

Before the minimax, `warmup_epochs` run step 2 alone (f_A at its identity initialisation): f_T and f_B learn the
raw task, and f_T's validation top-1 on *raw* clips at the end of the warm-up is the raw reference of the
checkpoint rule. A step whose loss or gradient is not finite changes nothing; such steps are counted (total
and longest streak, in the logged metrics) and the run stops with a clear error after
`max_nonfinite_in_a_row` in a row.

Every epoch evaluates on the validation split — f_T's top-1 on anonymized clips, the current f_B's NT-Xent on
anonymized views of validation images, the pixel RMS distance — and checkpoints. `select_checkpoint` then
applies the rule: among minimax checkpoints whose validation top-1 is within `selection.delta` of the raw
reference, the one with the lowest validation privacy loss, i.e. the anonymizer's own privacy term −L_B (the
highest NT-Xent of f_B: its views are the hardest to match). The chosen f_A is exported for the protocol.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx
from jax.experimental import multihost_utils

from anonvid import budget as budget_lib
from anonvid import config_defaults, configlib
from anonvid import metrics as M
from anonvid import sharding as shd
from anonvid.data import augment, pipeline
from anonvid.models.contrastive import nt_xent
from anonvid.models.registry import build_model
from anonvid.models.unet import apply_per_frame
from anonvid.trainers import core, identity

NETS = ("anonymizer", "action", "privacy")
SELECTED_DIR = "selected_anonymizer"


def default_config(smoke: bool = False, **overrides: Any) -> ml_collections.ConfigDict:
    """The minimax config at the synthetic benchmark's CPU size (paper values in comments).

    Sections: `anonymizer` (model, lr, `init` = path of an identity-pretraining export, "" = none), `action`
    (model, lr), `privacy` (model, lr, temperature, `augment` = the SimCLR views), `budget` (`B`, `weight` λ,
    `kind` pixel|feature), `omega` ω, `warmup_epochs`, `epochs`, `batch_size` (clips; as many privacy images),
    `eval_batch_size`, `selection.delta`, `max_nonfinite_in_a_row`, `seed`, `log_every_steps`, `sharding`,
    `compiler_options`.
    """
    cfg = ml_collections.ConfigDict()
    cfg.anonymizer = ml_collections.ConfigDict(dict(model=identity.default_model(smoke), lr=4e-5, init=""))
    action_kwargs = dict(widths=(8, 16) if smoke else (8, 16, 32, 64), blocks=(1, 1) if smoke else (1, 1, 1, 1),
                         stem="kinetics", stem_stride=(1, 2, 2), temporal_stride=True, temporal_center=True)
    cfg.action = ml_collections.ConfigDict(dict(
        model=ml_collections.ConfigDict(dict(name="r3d", kwargs=action_kwargs, dtype="float32")), lr=1e-4))
    privacy_kwargs = dict(proj_hidden=32 if smoke else 128, depth=10, width=8 if smoke else 16, stem="small",
                          stem_stride=2)
    cfg.privacy = ml_collections.ConfigDict(dict(
        model=ml_collections.ConfigDict(dict(name="contrastive", kwargs=privacy_kwargs, dtype="float32",
                                             proj_dim=32 if smoke else 128)),
        lr=1e-4, temperature=0.1,
        # SimCLR's views: resized crop, flip, colour jitter, greyscale (no erasing)
        augment=ml_collections.ConfigDict(dict(crop_scale=(0.3, 1.0), crop_ratio=(3 / 4, 4 / 3), flip=True,
                                               jitter=0.4, erase_prob=0.0, erase_area=(0.02, 0.2), grey_prob=0.2))))
    cfg.budget = ml_collections.ConfigDict(dict(B=0.3, weight=1.0, kind="pixel"))
    cfg.omega = 1.0
    cfg.warmup_epochs = 1 if smoke else 4
    cfg.epochs = 1 if smoke else 10  # paper: 100
    cfg.batch_size = 8  # paper: 8 clips + 8 image pairs
    cfg.eval_batch_size = 8 if smoke else 32
    cfg.selection = ml_collections.ConfigDict(dict(delta=0.05))
    cfg.max_nonfinite_in_a_row = 10
    cfg.grad_clip = 0.0
    cfg.seed = 0
    cfg.log_every_steps = 1 if smoke else 10
    cfg.sharding = config_defaults.sharding()
    cfg.compiler_options = ml_collections.ConfigDict()
    configlib.set_fields(cfg, overrides)
    return cfg


def check_config(cfg: Mapping[str, Any]) -> None:
    """Raises a clear error for a bad budget, weights, models or augmentation before anything is built."""
    budget_lib.check_budget(cfg["budget"]["B"], cfg["budget"]["kind"])
    for field, value in (("budget.weight", cfg["budget"]["weight"]), ("omega", cfg["omega"])):
        if float(value) < 0:
            raise ValueError(f"{field} must be >= 0; got {value}")
    for net, name in (("anonymizer", "unetpp"), ("action", "r3d"), ("privacy", "contrastive")):
        if cfg[net]["model"]["name"] != name:
            raise ValueError(f"{net}.model.name must be {name!r}; got {cfg[net]['model']['name']!r}")
        if not float(cfg[net]["lr"]) > 0:
            raise ValueError(f"{net}.lr must be positive; got {cfg[net]['lr']}")
    if not float(cfg["privacy"]["temperature"]) > 0:
        raise ValueError(f"privacy.temperature must be positive; got {cfg['privacy']['temperature']}")
    if int(cfg["max_nonfinite_in_a_row"]) < 1:
        raise ValueError(f"max_nonfinite_in_a_row must be >= 1; got {cfg['max_nonfinite_in_a_row']}")
    if int(cfg["epochs"]) < 1 or int(cfg["warmup_epochs"]) < 0:
        raise ValueError(f"epochs must be >= 1 and warmup_epochs >= 0; got {cfg['epochs']}, {cfg['warmup_epochs']}")
    init = str(cfg["anonymizer"]["init"])
    if init and not (os.path.exists(os.path.join(init, identity.CONFIG_FILE))
                     or os.path.exists(os.path.join(init, identity.EXPORT_DIR, identity.CONFIG_FILE))):
        raise FileNotFoundError(
            f"anonymizer.init={init!r}: no identity-pretrained anonymizer there. Pretrain it first with `anonvid "
            f"train --config configs/penalty.py:synthetic,identity --workdir {init}`, or set anonymizer.init='' "
            f"to start the minimax from a random UNet++ (not the paper's recipe)")
    augment.ClipAugment.from_config(cfg["privacy"]["augment"])


# ----------------------------------------------------------------------------------------------- state


def _optimizer(lr: float, grad_clip: float) -> optax.GradientTransformation:
    """Adam at a constant learning rate (the paper's three optimizers), optionally after global-norm clipping."""
    adam = optax.adam(float(lr))
    return optax.chain(optax.clip_by_global_norm(grad_clip), adam) if grad_clip > 0 else adam


def build(cfg: Mapping[str, Any], num_classes: int, mesh=None):
    """Builds the three models, their optimizers, the joint sharded state and its shardings.

    Returns:
      `(fns, txs, state, shardings, mesh, rules)` with `fns` / `txs` dicts keyed by `NETS`.
    """
    check_config(cfg)
    mesh, rules = core.mesh_for_batches(cfg, mesh)
    seed = int(cfg["seed"])
    privacy_model = dict(cfg["privacy"]["model"])
    models = {
        "anonymizer": build_model("unetpp", 3, kwargs=dict(cfg["anonymizer"]["model"]["kwargs"]),
                                  dtype=cfg["anonymizer"]["model"]["dtype"], seed=seed),
        "action": build_model("r3d", num_classes, kwargs=dict(cfg["action"]["model"]["kwargs"]),
                              dtype=cfg["action"]["model"]["dtype"], seed=seed + 1),
        "privacy": build_model("contrastive", int(privacy_model["proj_dim"]), kwargs=dict(privacy_model["kwargs"]),
                               dtype=privacy_model["dtype"], seed=seed + 2),
    }
    init = str(cfg["anonymizer"]["init"])
    if init:  # start f_A from the identity-pretrained export
        pretrained = identity.load_anonymizer(init)
        _, params, stats = core.split_model(pretrained)
        _, own_params, own_stats = core.split_model(models["anonymizer"])
        if jax.tree.map(np.shape, params) != jax.tree.map(np.shape, own_params):
            raise ValueError(f"the identity-pretrained anonymizer in {init!r} has other widths than "
                             f"anonymizer.model.kwargs; pretrain with the same model config")
        nnx.update(models["anonymizer"], params, stats)
    fns, txs, state, shardings = {}, {}, {}, {}
    for net in NETS:
        txs[net] = _optimizer(cfg[net]["lr"], float(cfg["grad_clip"]))
        fns[net], sub, sub_sh = core.create_state(models[net], txs[net], mesh, rules, seed=seed)
        state[net] = {k: sub[k] for k in ("params", "batch_stats", "opt_state")}
        shardings[net] = {k: sub_sh[k] for k in ("params", "batch_stats", "opt_state")}
        rep = sub_sh["step"]
    counters = {"run": 0, "max_run": 0, "total": 0}
    state.update(step=jax.device_put(jnp.zeros((), jnp.int32), rep),
                 rng=jax.device_put(jax.random.key_data(jax.random.key(seed)), rep),
                 nonfinite={k: jax.device_put(jnp.asarray(v, jnp.int32), rep) for k, v in counters.items()})
    shardings.update(step=rep, rng=rep, nonfinite={k: rep for k in counters})
    return fns, txs, state, shardings, mesh, rules


# ----------------------------------------------------------------------------------------------- steps


def _views(key: jax.Array, images: jax.Array, aug: augment.ClipAugment) -> tuple[jax.Array, jax.Array]:
    """Two independently augmented views of float images `(N, H, W, 3)`."""
    k1, k2 = jax.random.split(key)
    return (augment.augment_clips(k1, images[:, None], aug)[:, 0],
            augment.augment_clips(k2, images[:, None], aug)[:, 0])


def _merge(fns: core.ModelFns, sub: Mapping[str, Any], train: bool, copy: bool = False):
    return nnx.merge(fns.train_graph if train else fns.eval_graph, sub["params"], sub["batch_stats"], copy=copy)


def _guarded(finite: jax.Array, new: Any, old: Any) -> Any:
    """`new` where the step was finite, else `old` (a non-finite step changes nothing)."""
    return jax.tree.map(lambda a, b: jnp.where(finite, a, b), new, old)


def _count(nonfinite: Mapping[str, jax.Array], finite: jax.Array) -> dict:
    bad = (~finite).astype(jnp.int32)
    run = (nonfinite["run"] + 1) * bad
    return {"run": run, "max_run": jnp.maximum(nonfinite["max_run"], run), "total": nonfinite["total"] + bad}


def _distance(kind: str, action_model, x: jax.Array, xa: jax.Array) -> jax.Array:
    """The budget's distance D between the raw and the anonymized clips (pixel RMS or f_T-feature RMS)."""
    if kind == "pixel":
        return budget_lib.rms(x, xa)
    return budget_lib.rms(jax.lax.stop_gradient(action_model.features(x)), action_model.features(xa))


def make_anonymizer_step(fns: Mapping[str, core.ModelFns], tx: optax.GradientTransformation, shardings: Any,
                         batch_sharding: Any, *, budget: float, weight: float, kind: str, omega: float,
                         temperature: float, views: augment.ClipAugment,
                         compiler_options: Mapping[str, Any] | None = None) -> Callable:
    """Step 1: `(state, batch) -> (state, metrics)` updating f_A only on L_T − ω·L_B + λ·max(0, D − B).

    The batch holds `video` (B, T, H, W, 3), `action` (B,) and `images` (B, H, W, 3). f_T and f_B run in
    inference mode and receive no update. Metrics: `loss`, `action_loss`, `privacy_loss`, `penalty`,
    `distance`, `finite`, the non-finite counters and `grad_norm`.
    """
    budget_lib.check_budget(budget, kind)

    def step(state, batch):
        key = jax.random.fold_in(jax.random.wrap_key_data(state["rng"]), state["step"])
        x = core.to_float_video(batch["video"])
        v1, v2 = _views(key, core.to_float_video(batch["images"]), views)
        b, t = x.shape[:2]
        n = v1.shape[0]
        action_model = _merge(fns["action"], state["action"], train=False)
        privacy_model = _merge(fns["privacy"], state["privacy"], train=False)

        def loss_fn(params):
            anonymizer = _merge(fns["anonymizer"], dict(state["anonymizer"], params=params), train=True, copy=True)
            frames = jnp.concatenate([x.reshape((b * t,) + x.shape[2:]), v1, v2])
            out = anonymizer(frames)  # one pass: BatchNorm sees the action frames and the privacy views together
            xa = out[:b * t].reshape(x.shape)
            ce = optax.softmax_cross_entropy_with_integer_labels(action_model(xa), batch["action"]).mean()
            ntx = nt_xent(privacy_model(out[b * t:b * t + n]), privacy_model(out[b * t + n:]), temperature)
            dist = _distance(kind, action_model, x, xa)
            pen = budget_lib.hinge(dist, budget, weight)
            aux = {"action_loss": ce, "privacy_loss": ntx, "penalty": pen, "distance": dist}
            return ce - omega * ntx + pen, (aux, nnx.state(anonymizer, nnx.BatchStat))

        (loss, (aux, stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["anonymizer"]["params"])
        grad_norm = optax.tree.norm(grads)
        finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
        sub = state["anonymizer"]
        updates, opt_state = tx.update(grads, sub["opt_state"], sub["params"])
        new_sub = {"params": optax.apply_updates(sub["params"], updates), "batch_stats": stats,
                   "opt_state": opt_state}
        nonfinite = _count(state["nonfinite"], finite)
        new_state = dict(state, step=state["step"] + 1, anonymizer=_guarded(finite, new_sub, sub),
                         nonfinite=nonfinite)
        return new_state, {"loss": loss, **aux, "grad_norm": grad_norm, "finite": finite.astype(jnp.float32),
                           **{f"nonfinite_{k}": v for k, v in nonfinite.items()}}

    return jax.jit(step, in_shardings=(shardings, batch_sharding), out_shardings=(shardings, None),
                   donate_argnums=(0,), compiler_options=dict(compiler_options or {}) or None)


def make_branches_step(fns: Mapping[str, core.ModelFns], txs: Mapping[str, optax.GradientTransformation],
                       shardings: Any, batch_sharding: Any, *, temperature: float, views: augment.ClipAugment,
                       compiler_options: Mapping[str, Any] | None = None) -> Callable:
    """Step 2: `(state, batch) -> (state, metrics)` updating f_T on L_T and f_B on L_B, f_A frozen (inference)."""

    def step(state, batch):
        key = jax.random.fold_in(jax.random.wrap_key_data(state["rng"]), state["step"])
        x = core.to_float_video(batch["video"])
        v1, v2 = _views(key, core.to_float_video(batch["images"]), views)
        n = v1.shape[0]
        anonymizer = _merge(fns["anonymizer"], state["anonymizer"], train=False)
        xa = jax.lax.stop_gradient(apply_per_frame(anonymizer, x))
        views_a = jax.lax.stop_gradient(anonymizer(jnp.concatenate([v1, v2])))

        def action_loss(params):
            model = _merge(fns["action"], dict(state["action"], params=params), train=True, copy=True)
            ce = optax.softmax_cross_entropy_with_integer_labels(model(xa), batch["action"]).mean()
            return ce, nnx.state(model, nnx.BatchStat)

        def privacy_loss(params):
            model = _merge(fns["privacy"], dict(state["privacy"], params=params), train=True, copy=True)
            z = model(views_a)
            return nt_xent(z[:n], z[n:], temperature), nnx.state(model, nnx.BatchStat)

        new_state, metrics, finite = dict(state, step=state["step"] + 1), {}, jnp.asarray(True)
        for net, loss_fn in (("action", action_loss), ("privacy", privacy_loss)):
            sub = state[net]
            (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(sub["params"])
            ok = jnp.isfinite(loss) & jnp.isfinite(optax.tree.norm(grads))
            updates, opt_state = txs[net].update(grads, sub["opt_state"], sub["params"])
            new_sub = {"params": optax.apply_updates(sub["params"], updates), "batch_stats": stats,
                       "opt_state": opt_state}
            new_state[net] = _guarded(ok, new_sub, sub)
            metrics[f"{net}_loss"] = loss
            finite = finite & ok
        nonfinite = _count(state["nonfinite"], finite)
        new_state["nonfinite"] = nonfinite
        return new_state, {"loss": metrics["action_loss"] + metrics["privacy_loss"], **metrics,
                           "finite": finite.astype(jnp.float32),
                           **{f"nonfinite_{k}": v for k, v in nonfinite.items()}}

    return jax.jit(step, in_shardings=(shardings, batch_sharding), out_shardings=(shardings, None),
                   donate_argnums=(0,), compiler_options=dict(compiler_options or {}) or None)


class AlternatingStep:
    """Calls step 2 alone for the first `warmup_steps` batches, then steps 1 and 2 on alternate batches.

    The phase follows the global batch count, so a resumed run continues the same alternation. The returned
    metrics hold the latest of both steps, prefixed "anonymizer/" and "branches/", plus `loss` (this step's) and
    the non-finite counters.
    """

    def __init__(self, anonymizer_step: Callable, branches_step: Callable, *, warmup_steps: int, start: int):
        self.anonymizer_step, self.branches_step = anonymizer_step, branches_step
        self.warmup_steps = int(warmup_steps)
        self.count = int(start)
        self.last: dict[str, dict] = {}

    def phase(self, count: int) -> str:
        """"anonymizer" or "branches": which update batch number `count` (0-based) makes."""
        if count < self.warmup_steps or (count - self.warmup_steps) % 2:
            return "branches"
        return "anonymizer"

    def __call__(self, state, batch):
        phase = self.phase(self.count)
        state, out = (self.anonymizer_step if phase == "anonymizer" else self.branches_step)(state, batch)
        self.count += 1
        self.last[phase] = out
        # Every logged record carries both steps' latest metrics ("anonymizer/…", "branches/…"): with one step
        # in two, a log interval of even length would otherwise only ever see one of them.
        merged = {f"{p}/{k}": v for p, m in self.last.items() for k, v in m.items() if not k.startswith("nonfinite_")}
        merged.update({k: v for k, v in out.items() if k.startswith("nonfinite_")}, loss=out["loss"])
        return state, merged


def nonfinite_guard(limit: int) -> Callable[[Mapping[str, float], int], None]:
    """The train loop's record check: stop with a clear error once `limit` steps in a row were non-finite.

    The steps count themselves (`nonfinite_max_run` is the longest streak so far, so a streak between two logged
    records is not missed); scattered non-finite steps are skipped, counted and logged, and do not stop a run.
    """

    def check(record: Mapping[str, float], step: int) -> None:
        if record["nonfinite_max_run"] >= limit:
            raise FloatingPointError(
                f"penalty trainer: {int(record['nonfinite_max_run'])} non-finite steps in a row (limit "
                f"max_nonfinite_in_a_row={limit}; {int(record['nonfinite_total'])} in all) by step {step}; those "
                f"steps were skipped. Lower the learning rates or the budget weight, or check the inputs")

    return check


# ----------------------------------------------------------------------------------------------- evaluation


def make_eval_step(fns: Mapping[str, core.ModelFns], shardings: Any, batch_sharding: Any, *, temperature: float,
                   views: augment.ClipAugment) -> Callable:
    """`(state, batch, key) -> outputs` on validation data, every network in inference mode.

    Outputs: `logits` (f_T on anonymized clips), `raw_logits` (f_T on raw clips), `sq_error` (per-clip mean
    squared pixel change), `privacy_loss` (f_B's NT-Xent on anonymized views of the batch's images).
    """

    def step(state, batch, key):
        x = core.to_float_video(batch["video"])
        anonymizer = _merge(fns["anonymizer"], state["anonymizer"], train=False)
        action_model = _merge(fns["action"], state["action"], train=False)
        privacy_model = _merge(fns["privacy"], state["privacy"], train=False)
        xa = apply_per_frame(anonymizer, x)
        v1, v2 = _views(key, core.to_float_video(batch["images"]), views)
        z = privacy_model(anonymizer(jnp.concatenate([v1, v2])))
        n = v1.shape[0]
        return {"logits": action_model(xa), "raw_logits": action_model(x),
                "sq_error": jnp.mean((xa - x) ** 2, axis=(1, 2, 3, 4)),
                "privacy_loss": nt_xent(z[:n], z[n:], temperature)}

    return jax.jit(step, in_shardings=(shardings, batch_sharding, None))


def evaluate(eval_step: Callable, state: Any, val: Mapping[str, np.ndarray], val_images: np.ndarray, *,
             batch_size: int, batch_sharding: Any, seed: int) -> dict[str, float]:
    """Validation metrics of the current networks (fixed view draws, so checkpoints are comparable).

    Returns `val_top1` (f_T on anonymized clips), `val_top1_raw` (f_T on raw clips), `val_action_loss`,
    `val_privacy_loss` (f_B's NT-Xent on anonymized views, mean over whole batches), `val_distance` (pixel RMS
    over the split).
    """
    n = len(val["video"])
    m = max(n, len(val_images))
    m += (-m) % batch_size
    idx = np.arange(m)
    arrays = {"video": np.asarray(val["video"])[idx % n], "images": np.asarray(val_images)[idx % len(val_images)]}
    batches = pipeline.make_batches(pipeline.ArraySource(arrays, name="validation split"),
                                    global_batch_size=batch_size, seed=0, shuffle=False, num_epochs=1,
                                    sharding=batch_sharding)
    parts: dict[str, list] = {}
    for i, batch in enumerate(batches):
        out = eval_step(state, batch, jax.random.key(seed * 100003 + i))
        for k, v in out.items():
            parts.setdefault(k, []).append(np.asarray(multihost_utils.process_allgather(v, tiled=True)))
    logits = np.concatenate(parts["logits"])[:n].astype(np.float64)
    raw_logits = np.concatenate(parts["raw_logits"])[:n].astype(np.float64)
    labels = np.asarray(val["action"])
    log_p = logits - logits.max(1, keepdims=True)
    log_p = log_p - np.log(np.exp(log_p).sum(1, keepdims=True))
    whole = max(1, len(val_images) // batch_size)  # batches padded with repeats would make NT-Xent easier
    return {"val_top1": M.top1_accuracy(logits, labels), "val_top1_raw": M.top1_accuracy(raw_logits, labels),
            "val_action_loss": float(-log_p[np.arange(n), labels].mean()),
            "val_privacy_loss": float(np.mean(np.stack(parts["privacy_loss"])[:whole])),
            "val_distance": float(np.sqrt(np.concatenate(parts["sq_error"])[:n].mean()))}


# ----------------------------------------------------------------------------------------------- selection


def select_checkpoint(history: list[Mapping[str, Any]], *, raw_top1: float, delta: float) -> dict[str, Any]:
    """The checkpoint rule: among minimax checkpoints whose validation top-1 ≥ raw_top1 − delta, the lowest
    validation privacy loss of the anonymizer's objective (−L_B), i.e. the highest `val_privacy_loss` (f_B's
    NT-Xent). When no checkpoint is within delta, the one with the highest validation top-1, and the reason
    says so.

    Returns:
      `{"step", "epoch", "reason", "candidates"}` (the epochs that passed the top-1 test).
    """
    minimax = [r for r in history if r.get("phase") == "minimax"]
    if not minimax:
        raise ValueError("no minimax checkpoint to select from (epochs must be >= 1)")
    floor = raw_top1 - delta
    ok = [r for r in minimax if r["val_top1"] >= floor]
    if ok:
        best = max(ok, key=lambda r: (r["val_privacy_loss"], r["step"]))
        reason = (f"epoch {best['epoch']} (step {best['step']}): the highest validation NT-Xent of f_B "
                  f"({best['val_privacy_loss']:.4f}, i.e. the lowest privacy loss −L_B) among the {len(ok)} of "
                  f"{len(minimax)} minimax checkpoints whose validation top-1 is within δ={delta:.3f} of the raw "
                  f"reference {raw_top1:.4f} (≥ {floor:.4f}); its top-1 {best['val_top1']:.4f}")
    else:
        best = max(minimax, key=lambda r: (r["val_top1"], r["step"]))
        reason = (f"no minimax checkpoint reached validation top-1 ≥ {floor:.4f} (raw {raw_top1:.4f} − "
                  f"δ={delta:.3f}); took the highest top-1, epoch {best['epoch']} (step {best['step']}, top-1 "
                  f"{best['val_top1']:.4f})")
    return {"step": int(best["step"]), "epoch": int(best["epoch"]), "reason": reason,
            "candidates": [int(r["epoch"]) for r in ok]}


# ----------------------------------------------------------------------------------------------- training


def _check_data(train: Mapping[str, np.ndarray], images: np.ndarray, name: str, num_classes: int) -> None:
    video = train.get("video")
    if video is None or "action" not in train:
        raise ValueError(f"{name} split needs 'video' and 'action' arrays; it has {sorted(train)}")
    if video.ndim != 5 or video.shape[-1] != 3 or video.dtype != np.uint8 or not len(video):
        raise ValueError(f"{name} 'video' must be non-empty uint8 clips (N, T, H, W, 3); got {video.shape} "
                         f"{video.dtype}")
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8 or not len(images):
        raise ValueError(f"{name} privacy images must be non-empty uint8 (N, H, W, 3); got {images.shape} "
                         f"{images.dtype}")
    if tuple(images.shape[1:3]) != tuple(video.shape[2:4]):
        raise ValueError(f"{name}: the privacy images are {images.shape[1]}×{images.shape[2]} but the action "
                         f"frames are {video.shape[2]}×{video.shape[3]}; resize one to the other (both pass "
                         f"through the same anonymizer, and the paper uses one input size)")
    labels = np.asarray(train["action"])
    if labels.shape != (len(video),) or labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"{name}: action labels must be ({len(video)},) ints in 0..{num_classes - 1}")


def train_penalty(cfg: ml_collections.ConfigDict, train: Mapping[str, np.ndarray], train_images: np.ndarray,
                  val: Mapping[str, np.ndarray], val_images: np.ndarray, *, num_classes: int,
                  workdir: str | None = None, mesh=None, progress: bool = True, desc: str = "",
                  warmup_only: bool = False, warm_start: str | None = None) -> dict[str, Any]:
    """Warm-up, minimax, per-epoch validation and checkpoints, then the checkpoint rule.

    Args:
      cfg: `default_config()`-style config.
      train, val: splits with `video` uint8 (N, T, H, W, 3) and `action` (N,).
      train_images, val_images: privacy images uint8 (M, H, W, 3), same H×W as the clips (no labels needed).
      num_classes: action classes.
      workdir: checkpoints (all kept: the rule needs them), `metrics.jsonl`, `curves.png`, `selection.json` and
        the chosen f_A exported to `workdir/selected_anonymizer`; None trains in memory and selects among the
        in-memory history only (the final state is returned).
      mesh, progress, desc: as the other trainers.
      warmup_only: stop after the warm-up (no minimax, no selection): a run that several budgets can start from.
      warm_start: the folder of a `warmup_only` run with the same config except the budget (and λ, ω); a fresh
        `workdir` starts from its checkpoint instead of repeating the warm-up. The warm-up never sees the budget,
        λ or ω (step 2 does not use them), so the result is what an own warm-up would give.

    Returns:
      `{"history", "raw_top1", "selection", "steps", "state", "fns", "anonymizer"}` — `anonymizer` is the
      selected f_A in inference mode (the final one without a workdir).
    """
    train_images, val_images = np.asarray(train_images), np.asarray(val_images)
    _check_data(train, train_images, "train", num_classes)
    _check_data(val, val_images, "validation", num_classes)
    check_config(cfg)
    batch_size = int(cfg.batch_size)
    n = max(len(train["video"]), len(train_images))
    steps_per_epoch = (n // batch_size) // 2 * 2  # even: every epoch has as many f_A as f_T/f_B updates
    if steps_per_epoch < 2:
        raise ValueError(f"{n} training examples make fewer than two batches of {batch_size}")
    warmup_steps = steps_per_epoch * int(cfg.warmup_epochs)
    total_steps = warmup_steps + (0 if warmup_only else steps_per_epoch * int(cfg.epochs))
    if warmup_only and not warmup_steps:
        raise ValueError("warmup_only needs warmup_epochs >= 1")
    if warm_start:
        _copy_warm_start(warm_start, workdir, warmup_steps)
    fns, txs, state, shardings, mesh, rules = build(cfg, num_classes, mesh)
    batch_sh = shd.batch_sharding(mesh, rules)
    views = augment.ClipAugment.from_config(cfg.privacy.augment.to_dict())
    options = cfg.compiler_options.to_dict()
    anonymizer_step = make_anonymizer_step(
        fns, txs["anonymizer"], shardings, batch_sh, budget=float(cfg.budget.B), weight=float(cfg.budget.weight),
        kind=cfg.budget.kind, omega=float(cfg.omega), temperature=float(cfg.privacy.temperature), views=views,
        compiler_options=options)
    branches_step = make_branches_step(fns, txs, shardings, batch_sh, temperature=float(cfg.privacy.temperature),
                                       views=views, compiler_options=options)
    eval_step = make_eval_step(fns, shardings, batch_sh, temperature=float(cfg.privacy.temperature), views=views)
    # Privacy images are shuffled apart from the clips (a fixed permutation): a pair never shows one scene twice.
    perm = np.random.default_rng(int(cfg.seed) + 7).permutation(len(train_images))
    source = pipeline.ZipSource(pipeline.ArraySource({"video": train["video"], "action": train["action"]}),
                                pipeline.ArraySource({"images": train_images[perm]}), name="train split")
    batches = pipeline.make_batches(source, global_batch_size=batch_size, seed=int(cfg.seed), shuffle=True,
                                    num_epochs=None, sharding=batch_sh)
    ckpt, log, state, meta = core.open_run(workdir, keep=None, state=state, shardings=shardings, batches=batches)
    history: list[dict] = list(meta["history"]) if meta else []
    stepper = AlternatingStep(anonymizer_step, branches_step, warmup_steps=warmup_steps, start=int(state["step"]))
    def evaluate_epoch(st) -> dict:
        result = evaluate(eval_step, st, val, val_images, batch_size=int(cfg.eval_batch_size),
                          batch_sharding=batch_sh, seed=int(cfg.seed))
        step = int(st["step"])
        result["phase"] = "warmup" if step <= warmup_steps else "minimax"
        result["nonfinite_total"] = int(st["nonfinite"]["total"])
        return result

    state, history, step = core.train_loop(
        stepper, state, batches, total_steps=total_steps, steps_per_epoch=steps_per_epoch, evaluate=evaluate_epoch,
        history=history, ckpt=ckpt, log=log, log_every=int(cfg.log_every_steps), checkpoint_every=0,
        name="penalty trainer", desc=desc or f"penalty minimax (B={cfg.budget.B})", progress=progress,
        check_record=nonfinite_guard(int(cfg.max_nonfinite_in_a_row)))
    if warmup_only:
        return {"history": history, "steps": step, "state": state, "fns": fns}
    warm = [r for r in history if r["phase"] == "warmup"]
    # The raw reference: f_T after the warm-up (f_A ≈ identity), on raw validation clips.
    raw_top1 = warm[-1]["val_top1_raw"] if warm else history[0]["val_top1_raw"]
    selection = select_checkpoint(history, raw_top1=raw_top1, delta=float(cfg.selection.delta))
    selection["raw_top1"] = raw_top1
    if workdir:
        core.plot_curves(log.records, os.path.join(workdir, "curves.png"), title=f"penalty B={cfg.budget.B}")
        path = os.path.join(workdir, SELECTED_DIR)
        if not os.path.exists(os.path.join(path, identity.CONFIG_FILE)):  # a finished run re-read: already there
            chosen = _restore_anonymizer(workdir, state, shardings, selection["step"])
            identity.export_anonymizer(path, cfg.anonymizer.model, chosen["params"], chosen["batch_stats"],
                                       selection)
        anonymizer = identity.load_anonymizer(path)
        with open(os.path.join(workdir, "selection.json"), "w", encoding="utf-8") as f:
            json.dump({**selection, "history": history}, f, indent=1)
    else:
        anonymizer = _merge(fns["anonymizer"], state["anonymizer"], train=False)
    return {"history": history, "raw_top1": raw_top1, "selection": selection, "steps": step, "state": state,
            "fns": fns, "anonymizer": anonymizer}


def _copy_warm_start(source: str, workdir: str | None, warmup_steps: int) -> None:
    """Seeds a fresh `workdir` with the warm-up checkpoint (and metric log) of the run in `source`."""
    import shutil

    if not workdir:
        raise ValueError("warm_start needs a workdir to copy the warm-up checkpoint into")
    target = os.path.join(workdir, "checkpoints")
    if os.path.isdir(target) and os.listdir(target):
        return  # this run has started already: resume it, do not overwrite
    step_dir = os.path.join(source, "checkpoints", str(warmup_steps))
    if not os.path.isdir(step_dir):
        raise FileNotFoundError(f"warm_start={source!r} has no warm-up checkpoint at step {warmup_steps}; run "
                                f"the warm-up (train_penalty(..., warmup_only=True)) with the same config first")
    os.makedirs(target, exist_ok=True)
    shutil.copytree(step_dir, os.path.join(target, str(warmup_steps)))
    log = os.path.join(source, "metrics.jsonl")
    if os.path.exists(log):
        shutil.copy(log, os.path.join(workdir, "metrics.jsonl"))


def _restore_anonymizer(workdir: str, state: Any, shardings: Any, step: int) -> dict:
    """f_A's params and batch statistics at checkpoint `step` of the run in `workdir`."""
    from anonvid.checkpointing import Checkpointer

    with Checkpointer(os.path.join(workdir, "checkpoints"), keep=None, read_only=True) as ckpt:
        restored, _ = ckpt.restore(core.abstract_like(state, shardings), step=step)
    return restored["anonymizer"]
