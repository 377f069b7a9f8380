"""Identity pretraining of the anonymizer f_A (METHODS.md C, step 0): L1 reconstruction of single frames.

Before the minimax the UNet++ learns to copy its input, so that the adversarial phase starts from "no
anonymization" and the budget penalty starts at zero. Adam (lr 1e-3) with linear warm-up, and the learning
rate multiplied by `plateau_factor` whenever the epoch's mean training loss has not improved for
`plateau_patience` epochs (optax `reduce_on_plateau`). Frames are drawn from the training clips (and privacy
images, when given); each epoch reports L1 and PSNR on held-out frames. The run is its own experiment with its
own checkpoint folder, and exports the final f_A to `workdir/anonymizer`: `load_anonymizer(workdir)` restores
it, and the penalty trainer starts from it.
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

from anonvid import config_defaults, configlib
from anonvid import sharding as shd
from anonvid.data import pipeline
from anonvid.models.registry import build_model
from anonvid.trainers import core

CONFIG_FILE = "anonymizer_config.json"  # what `load_anonymizer` rebuilds the model from


def default_model(smoke: bool = False) -> ml_collections.ConfigDict:
    """The anonymizer's model section: UNet++ at CPU widths (the paper's is 256-128-64-32 on ResNet-18)."""
    kwargs = dict(widths=(4, 8) if smoke else (8, 16, 32), encoder="conv", resnet_blocks=1)
    return ml_collections.ConfigDict(dict(name="unetpp", kwargs=kwargs, dtype="float32"))


def default_config(smoke: bool = False, **overrides: Any) -> ml_collections.ConfigDict:
    """Identity-pretraining config.

    Fields: `model` (unetpp), `optim` (Adam: `lr`, `warmup_steps`/`warmup_fraction`, `plateau_factor`,
    `plateau_patience` in epochs), `epochs`, `batch_size` / `eval_batch_size` (frames), `frames_per_clip`
    (frames taken from every training clip), `seed`, `log_every_steps`, `keep_checkpoints`, `sharding`,
    `compiler_options`.
    """
    cfg = ml_collections.ConfigDict()
    cfg.model = default_model(smoke)
    cfg.optim = ml_collections.ConfigDict(dict(lr=1e-3, warmup_steps=0, warmup_fraction=0.05, plateau_factor=0.5,
                                               plateau_patience=2))
    cfg.epochs = 1 if smoke else 10
    cfg.batch_size = 16 if smoke else 64
    cfg.eval_batch_size = 16 if smoke else 128
    cfg.frames_per_clip = 2
    cfg.seed = 0
    cfg.log_every_steps = 1 if smoke else 10
    cfg.keep_checkpoints = 1
    cfg.sharding = config_defaults.sharding()
    cfg.compiler_options = ml_collections.ConfigDict()
    configlib.set_fields(cfg, overrides)
    return cfg


def make_optimizer(optim: Mapping[str, Any], total_steps: int, steps_per_epoch: int) -> optax.GradientTransformation:
    """Adam with linear warm-up, then learning-rate decay on plateaus of the epoch-mean loss."""
    lr = float(optim["lr"])
    if lr <= 0:
        raise ValueError(f"optim.lr must be positive; got {lr}")
    warmup = int(optim.get("warmup_steps", 0) or round(float(optim.get("warmup_fraction", 0.0)) * total_steps))
    schedule = optax.linear_schedule(0.0, lr, warmup) if warmup else lr
    return optax.chain(optax.adam(schedule),
                       optax.contrib.reduce_on_plateau(factor=float(optim["plateau_factor"]),
                                                       patience=int(optim["plateau_patience"]),
                                                       accumulation_size=steps_per_epoch))


def frames_of(clips: np.ndarray, per_clip: int, seed: int) -> np.ndarray:
    """`per_clip` distinct random frames of every clip `(N, T, H, W, 3)` → images `(N·per_clip, H, W, 3)`."""
    clips = np.asarray(clips)
    if clips.ndim != 5:
        raise ValueError(f"expected clips (N, T, H, W, 3); got {clips.shape}")
    n, t = clips.shape[:2]
    k = min(int(per_clip), t)
    rng = np.random.default_rng(seed)
    idx = np.argsort(rng.random((n, t)), axis=1)[:, :k]
    return clips[np.arange(n)[:, None], idx].reshape((n * k,) + clips.shape[2:])


def make_train_step(fns: core.ModelFns, tx: optax.GradientTransformation, shardings: Any, batch_sharding: Any,
                    compiler_options: Mapping[str, Any] | None = None) -> Callable:
    """The jitted `(state, batch) -> (state, {"loss", "grad_norm"})` of L1 reconstruction; batch has `image`."""

    def step(state, batch):
        x = core.to_float_video(batch["image"])

        def loss_fn(params):
            model = nnx.merge(fns.train_graph, params, state["batch_stats"], copy=True)
            loss = jnp.mean(jnp.abs(model(x) - x))
            return loss, nnx.state(model, nnx.BatchStat)

        (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["params"])
        updates, opt_state = tx.update(grads, state["opt_state"], state["params"], value=loss)
        params = optax.apply_updates(state["params"], updates)
        return (dict(state, step=state["step"] + 1, params=params, batch_stats=batch_stats, opt_state=opt_state),
                {"loss": loss, "grad_norm": optax.tree.norm(grads)})

    return jax.jit(step, in_shardings=(shardings, batch_sharding), out_shardings=(shardings, None),
                   donate_argnums=(0,), compiler_options=dict(compiler_options or {}) or None)


def evaluate(fns: core.ModelFns, state: Any, images: np.ndarray, *, batch_size: int, batch_sharding: Any) -> dict:
    """Mean L1 error and PSNR (dB, peak 1) of the reconstruction of `images` (uint8), BatchNorm in inference."""
    step = _eval_step(fns)
    batches = pipeline.make_batches(pipeline.ArraySource({"image": pad_to_multiple(images, batch_size)},
                                                         name="validation frames"),
                                    global_batch_size=batch_size, seed=0, shuffle=False, num_epochs=1,
                                    sharding=batch_sharding)
    l1, se = [], []
    for batch in batches:
        a, b = step(state, batch["image"])
        l1.append(np.asarray(multihost_utils.process_allgather(a, tiled=True)))
        se.append(np.asarray(multihost_utils.process_allgather(b, tiled=True)))
    n = len(images)
    l1, se = np.concatenate(l1)[:n], np.concatenate(se)[:n]
    return {"l1": float(l1.mean()), "psnr": float(np.mean(-10 * np.log10(np.maximum(se, 1e-12))))}


def pad_to_multiple(array: np.ndarray, multiple: int) -> np.ndarray:
    """`array` with its first row repeated at the end up to a multiple of `multiple` rows (one compiled shape
    for evaluation; callers drop the padded rows)."""
    pad = (-len(array)) % int(multiple)
    return np.concatenate([array, np.repeat(array[:1], pad, axis=0)]) if pad else np.asarray(array)


def _eval_step(fns: core.ModelFns) -> Callable:
    @jax.jit
    def step(state, image):
        x = core.to_float_video(image)
        y = nnx.merge(fns.eval_graph, state["params"], state["batch_stats"])(x)
        d = y - x
        return jnp.mean(jnp.abs(d), axis=(1, 2, 3)), jnp.mean(d * d, axis=(1, 2, 3))
    return step


def train_identity(cfg: ml_collections.ConfigDict, train_images: np.ndarray, val_images: np.ndarray, *,
                   workdir: str | None = None, mesh=None, progress: bool = True) -> dict[str, Any]:
    """Pretrains the anonymizer to the identity on images `(N, H, W, 3)` uint8.

    Returns:
      `{"history", "final", "steps", "state", "fns"}`; with a `workdir`, also writes its checkpoints,
      `metrics.jsonl`, `curves.png` and the final f_A exported to `workdir/anonymizer` (`load_anonymizer`).
    """
    for name, images in (("train", train_images), ("validation", val_images)):
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8 or not len(images):
            raise ValueError(f"identity pretraining needs non-empty uint8 {name} images (N, H, W, 3); got "
                             f"{images.shape} {images.dtype}")
    if cfg.model.name != "unetpp":
        raise ValueError(f"the anonymizer is model 'unetpp'; got {cfg.model.name!r}")
    mesh, rules = core.mesh_for_batches(cfg, mesh)
    batch_size = int(cfg.batch_size)
    if len(train_images) < batch_size:
        raise ValueError(f"{len(train_images)} training frames, fewer than one batch of {batch_size}")
    steps_per_epoch = len(train_images) // batch_size
    total_steps = steps_per_epoch * int(cfg.epochs)
    model = build_model("unetpp", 3, kwargs=cfg.model.kwargs.to_dict(), dtype=cfg.model.dtype, seed=int(cfg.seed))
    tx = make_optimizer(cfg.optim, total_steps, steps_per_epoch)
    fns, state, shardings = core.create_state(model, tx, mesh, rules, seed=int(cfg.seed))
    batch_sh = shd.batch_sharding(mesh, rules)
    train_step = make_train_step(fns, tx, shardings, batch_sh, cfg.compiler_options.to_dict())
    batches = pipeline.make_batches(pipeline.ArraySource({"image": train_images}, name="training frames"),
                                    global_batch_size=batch_size, seed=int(cfg.seed), shuffle=True,
                                    num_epochs=None, sharding=batch_sh)
    ckpt, log, state, meta = core.open_run(workdir, keep=int(cfg.keep_checkpoints), state=state,
                                           shardings=shardings, batches=batches)
    history: list[dict] = list(meta["history"]) if meta else []
    state, history, step = core.train_loop(
        train_step, state, batches, total_steps=total_steps, steps_per_epoch=steps_per_epoch,
        evaluate=lambda st: evaluate(fns, st, val_images, batch_size=int(cfg.eval_batch_size),
                                     batch_sharding=batch_sh),
        history=history, ckpt=ckpt, log=log, log_every=int(cfg.log_every_steps), checkpoint_every=0,
        name="identity pretraining", desc="anonymizer: identity pretraining", progress=progress)
    if workdir:
        core.plot_curves(log.records, os.path.join(workdir, "curves.png"), title="anonymizer identity pretraining")
        export_anonymizer(os.path.join(workdir, EXPORT_DIR), cfg.model, state["params"], state["batch_stats"],
                          {"step": step, **history[-1]})
    return {"history": history, "final": history[-1], "steps": step, "state": state, "fns": fns}


EXPORT_DIR = "anonymizer"  # inside a run folder: the trained f_A alone, ready for `load_anonymizer`


def export_anonymizer(path: str, model_cfg: Mapping[str, Any], params: Any, batch_stats: Any,
                      meta: Mapping[str, Any] | None = None) -> str:
    """Writes an anonymizer (model config + parameters + BatchNorm statistics) to its own folder `path`.

    Identity pretraining exports its final f_A; the penalty trainer exports the checkpoint its selection rule
    chose. `load_anonymizer(path)` reads it back on any device. Returns `path`.
    """
    from anonvid.checkpointing import Checkpointer

    os.makedirs(path, exist_ok=True)
    cfg = model_cfg.to_dict() if hasattr(model_cfg, "to_dict") else dict(model_cfg)
    with Checkpointer(os.path.join(path, "checkpoints"), keep=1) as ckpt:
        ckpt.save(0, {"params": params, "batch_stats": batch_stats}, dict(meta or {}), force=True)
    with open(os.path.join(path, CONFIG_FILE), "w", encoding="utf-8") as f:  # written last: marks a whole export
        json.dump({"model": cfg, "meta": dict(meta or {})}, f, indent=1, default=list)
    return path


def load_anonymizer(path: str) -> nnx.Module:
    """The anonymizer exported to `path` (by identity pretraining or a penalty run), in inference mode.

    `path` may also be a run folder holding an `anonymizer/` export. Raises FileNotFoundError saying what to run
    when there is none.
    """
    from anonvid.checkpointing import Checkpointer

    if not os.path.exists(os.path.join(path, CONFIG_FILE)) and os.path.exists(
            os.path.join(path, EXPORT_DIR, CONFIG_FILE)):
        path = os.path.join(path, EXPORT_DIR)
    config_path = os.path.join(path, CONFIG_FILE)
    if not os.path.exists(config_path):
        raise FileNotFoundError(
            f"{path!r} holds no exported anonymizer ({CONFIG_FILE} is missing). Pretrain one with `anonvid train "
            f"--config configs/penalty.py:synthetic,identity --workdir DIR` (it exports to DIR/{EXPORT_DIR}), or "
            f"point at a penalty run's selected anonymizer")
    with open(config_path, encoding="utf-8") as f:
        model_cfg = json.load(f)["model"]
    model = build_model("unetpp", 3, kwargs=model_cfg["kwargs"], dtype=model_cfg["dtype"])
    fns, params, batch_stats = core.split_model(model)
    rep = shd.replicated(shd.make_mesh((("data", 1),), jax.devices()[:1]))
    target = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=rep),
                          {"params": params, "batch_stats": batch_stats})
    with Checkpointer(os.path.join(path, "checkpoints"), keep=1, read_only=True) as ckpt:
        restored, _ = ckpt.restore(target)
    return nnx.merge(fns.eval_graph, restored["params"], restored["batch_stats"])
