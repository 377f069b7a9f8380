"""Building blocks of the experiment configs in `configs/`: data, classifier, sharding and distributed sections.

Each function returns a fresh `ConfigDict`; `smoke=True` shrinks every size so the same config file runs as a
seconds-long test. The *demo* sizes are what `make demo` runs on a 2-core CPU; full-size runs override them.
"""
from __future__ import annotations

import ml_collections

from anonvid import sharding as shd


def synthetic_actions(*, smoke: bool = False, num_frames: int = 8, size: int = 32, train_size: int = 1024,
                      test_size: int = 512, seed: int = 0) -> ml_collections.ConfigDict:
    """The built-in synthetic actions benchmark (clips, action label, 5 privacy attributes, masks)."""
    cfg = ml_collections.ConfigDict()
    cfg.name = "synthetic_actions"
    cfg.num_frames = 8 if smoke else num_frames
    cfg.height = 32 if smoke else size
    cfg.width = 32 if smoke else size
    cfg.train_size = 32 if smoke else train_size
    cfg.test_size = 16 if smoke else test_size
    cfg.camera_pan = True
    cfg.seed = seed
    return cfg


def synthetic_surveillance(*, smoke: bool = False, num_frames: int = 120, size: int = 64, train_size: int = 16,
                           test_size: int = 16, seed: int = 0) -> ml_collections.ConfigDict:
    """The synthetic benchmark's surveillance mode: long fixed-camera videos, normal-only train split, frame
    anomaly labels on test (`train_size`/`test_size` count videos)."""
    cfg = ml_collections.ConfigDict()
    cfg.name = "synthetic_surveillance"
    cfg.num_frames = 60 if smoke else num_frames  # >= 10-frame windows after ts(5)
    cfg.height = 32 if smoke else size
    cfg.width = 32 if smoke else size
    cfg.train_size = 2 if smoke else train_size
    cfg.test_size = 2 if smoke else test_size
    cfg.seed = seed
    return cfg


def optimizer(*, lr: float = 1e-3, weight_decay: float = 1e-4, warmup_fraction: float = 0.05,
              grad_clip: float = 1.0) -> ml_collections.ConfigDict:
    """AdamW + warm-up + cosine over the run."""
    return ml_collections.ConfigDict(dict(lr=lr, weight_decay=weight_decay, warmup_steps=0,
                                          warmup_fraction=warmup_fraction, grad_clip=grad_clip, b1=0.9,
                                          b2=0.999, end_lr_fraction=0.0))


def sharding() -> ml_collections.ConfigDict:
    """Mesh `data` × `model` (-1 fills the devices) and the logical-axis rules table."""
    return ml_collections.ConfigDict(dict(mesh=(("data", -1), ("model", 1)),
                                          rules=tuple(shd.DEFAULT_RULES)))


def distributed() -> ml_collections.ConfigDict:
    """Multi-process settings; empty fields are taken from the environment (see `anonvid.distributed`)."""
    return ml_collections.ConfigDict(dict(coordinator_address="", num_processes=0, process_id=-1,
                                          local_device_ids="", cpu_collectives="gloo"))


def _classifier(model_name: str, model_kwargs: dict, *, epochs: int, batch_size: int, lr: float,
                smoke: bool, seed: int) -> ml_collections.ConfigDict:
    cfg = ml_collections.ConfigDict()
    cfg.model = ml_collections.ConfigDict(dict(name=model_name, kwargs=model_kwargs, dtype="float32"))
    cfg.optim = optimizer(lr=lr)
    cfg.epochs = 1 if smoke else epochs
    cfg.batch_size = 8 if smoke else batch_size
    cfg.eval_batch_size = 8 if smoke else 2 * batch_size
    cfg.seed = seed
    cfg.train_frames = 0  # 0 = every frame; per-frame models may train on a random subset (eval sees all)
    cfg.log_every_steps = 1 if smoke else 10
    cfg.checkpoint_every_steps = 0  # 0 = at the end of every epoch
    cfg.keep_checkpoints = 2
    cfg.sharding = sharding()
    # `jax.jit` compiler options; a smoke run is all compile, and XLA backend optimisation level 0 roughly halves
    # the CPU compile time of these small programs (results agree to float rounding)
    cfg.compiler_options = ml_collections.ConfigDict({"xla_backend_optimization_level": 0} if smoke else {})
    return cfg


def action_model(*, smoke: bool = False, epochs: int = 10, seed: int = 0) -> ml_collections.ConfigDict:
    """The fresh action model: an R3D (R3D-18 layout at CPU widths, with the temporal-centred motion input)."""
    kwargs = dict(widths=(8, 16) if smoke else (8, 16, 32, 64), blocks=(1, 1) if smoke else (1, 1, 1, 1),
                  stem="kinetics", stem_stride=(1, 2, 2), temporal_stride=True, temporal_center=True)
    return _classifier("r3d", kwargs, epochs=epochs, batch_size=32, lr=2e-3, smoke=smoke, seed=seed)


def privacy_attacker(*, smoke: bool = False, epochs: int = 10, seed: int = 0) -> ml_collections.ConfigDict:
    """The fresh privacy attacker: a per-frame 2-D ResNet, logits averaged over time, multi-label BCE."""
    kwargs = dict(depth=10, width=8 if smoke else 16, stem="small", stem_stride=2, temporal_pool="mean_logits")
    cfg = _classifier("resnet2d", kwargs, epochs=epochs, batch_size=32, lr=2e-3, smoke=smoke, seed=seed)
    cfg.train_frames = 4
    return cfg
