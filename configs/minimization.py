"""Data minimization grid ("Only What's Necessary", METHODS.md B): utility (VAD frame AUC) vs leakage (cMAP, F1).

    anonvid train --config configs/minimization.py:synthetic --workdir /tmp/minimization
    anonvid train --config configs/minimization.py:synthetic,smoke --workdir /tmp/minimization_smoke
    anonvid train --config configs/minimization.py:ucsd_ped2 --workdir /tmp/ped2   # after `anonvid data prepare ucsd`

`synthetic` runs the paper's 5×5 ordered-pair grid over TS, DS, MK, BL, BR on the built-in benchmark (surveillance
mode for the VAD model, actions mode for the attacker) on a CPU. Its frames are 64² where the paper's are 256²,
so the spatial parameters are scaled by 1/4 (blur σ 4 → 1); downsampling ×2, the threshold 25/255 and temporal
sampling ×5 are scale-free. `ucsd_ped2` has the paper's settings: 256² grey UCSD Ped2 for the VAD model,
PA-HMDB51 clips for a ResNet-50 attacker, σ 4, 50 VAD epochs.

`synthetic,demo` is what `make demo` runs: 32² frames (spatial parameters scaled by 1/8: blur σ 0.5), smaller
models and only the temporal-sampling row and the diagonal of the grid (9 configurations, TS alone being the
reference).

Run part of the grid with `--config.grid.only='("TS", "TS+BL")'`, or replace it with any list of specs:
`--config.grid.specs='("ts(5)|blur(1)", "ts(5)|pixelate(4)")'`.
Arguments: `synthetic` | `ucsd_ped2`, plus `smoke`, `demo`, `epochs=` (attacker), `vad_epochs=`, `seed=`.
"""
import ml_collections

from anonvid import config_defaults as D
from anonvid.configlib import parse_arg
from anonvid.trainers import vad

OBJECTIVES = ("auc:max", "cmap:min", "f1:min")
WEIGHTS = (0.5, 0.25, 0.25)  # METHODS.md B, method 2


def _grid(mechanisms) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(dict(mechanisms=tuple(mechanisms), only=(), specs=(), objectives=OBJECTIVES,
                                          weights=WEIGHTS))


def get_config(arg=None):
    a = parse_arg(arg, synthetic=False, ucsd_ped2=False, smoke=False, demo=False, epochs=0, vad_epochs=0, seed=0)
    if a.synthetic == a.ucsd_ped2:
        raise ValueError("choose exactly one of 'synthetic' or 'ucsd_ped2', e.g. configs/minimization.py:synthetic")
    cfg = ml_collections.ConfigDict()
    cfg.experiment = "minimization"
    cfg.distributed = D.distributed()
    if a.synthetic:
        # CPU budget (2 cores): a few minutes per configuration. The STAE reached its plateau frame AUC within
        # ~200 steps of batch 4 on these videos; more epochs did not raise it (2026-11-29).
        # 200-frame videos: after ts(5) each test video still has 31 scored frames (16 videos: ~500 frames).
        cfg.vad_data = D.synthetic_surveillance(smoke=a.smoke, num_frames=200, size=64, train_size=12,
                                                test_size=16, seed=a.seed)
        cfg.attack_data = D.synthetic_actions(smoke=a.smoke, num_frames=10, size=64, train_size=512,
                                              test_size=256, seed=a.seed)
        blur = "blur(1)"
        cfg.vad = vad.default_config(smoke=a.smoke, epochs=a.vad_epochs or 2, seed=a.seed)
        cfg.vad.model.kwargs.widths = (16, 8) if a.smoke else (32, 16)
        cfg.vad.model.kwargs.lstm = (8, 4, 8) if a.smoke else (16, 8, 16)
        if not a.smoke:
            cfg.vad.windows_per_epoch = 256
        cfg.attacker = D.privacy_attacker(smoke=a.smoke, epochs=a.epochs or 8, seed=a.seed)
    else:
        # Prepared with `anonvid data prepare ucsd --config ped2_256x256` and `anonvid data prepare pa_hmdb51
        # --config random60` (60/40 by video, seed 42); README "Real datasets".
        cfg.vad_data = ml_collections.ConfigDict(dict(name="ucsd_ped2", data_dir="", config="ped2_256x256",
                                                      height=256, width=256, grey=True))
        cfg.attack_data = ml_collections.ConfigDict(dict(name="pa_hmdb51", data_dir="", config="random60",
                                                         num_frames=10, frame_stride=1, height=224, width=224,
                                                         train_clips=1, test_clips=1, seed=a.seed))
        blur = "blur(4)"
        cfg.vad = vad.default_config(smoke=a.smoke, epochs=a.vad_epochs or 50, seed=a.seed)
        cfg.attacker = D.privacy_attacker(smoke=a.smoke, epochs=a.epochs or 30, seed=a.seed)
        cfg.attacker.model.kwargs = dict(depth=50, width=64, stem="imagenet", stem_stride=2)
        cfg.attacker.train_frames = 0
    # METHODS.md B: "ResNet per frame, features max-pooled over time, linear -> 5 logits, BCE".
    cfg.attacker.model.kwargs.temporal_pool = "max_features"
    cfg.grid = _grid(["TS=ts(5)", "DS=ds(2)", "MK=mask(25)", f"BL={blur}", "BR=bgsub(warmup=20)"])
    if a.demo:
        _demo_budget(cfg, a)
    return cfg


def _demo_budget(cfg, a) -> None:
    """Shrinks the synthetic grid to what `make demo` affords on a 2-core CPU (a few minutes)."""
    if not a.synthetic:
        raise ValueError("'demo' goes with 'synthetic'")
    size = 32 if not a.smoke else cfg.vad_data.height
    if not a.smoke:
        cfg.vad_data.update(height=size, width=size, num_frames=150, train_size=8, test_size=12)
    cfg.attack_data.update(height=size, width=size, num_frames=10)
    if not a.smoke:
        cfg.vad.model.kwargs.widths, cfg.vad.model.kwargs.lstm = (16, 8), (8, 4, 8)
        cfg.vad.windows_per_epoch = 128
        cfg.attacker.epochs = a.epochs or 6
    mech = {"TS": "ts(5)", "DS": "ds(2)", "MK": "mask(25)", "BL": "blur(0.5)", "BR": "bgsub(warmup=20)"}
    cfg.grid.mechanisms = tuple(f"{k}={v}" for k, v in mech.items())
    cfg.grid.only = tuple(["TS"] + [f"TS+{k}" for k in mech if k != "TS"] + [k for k in mech if k != "TS"])
    if a.smoke:  # the demo's smoke test: two configurations show the wiring
        cfg.grid.only = ("TS", "TS+BL")
