"""Penalty-driven adversarial anonymizer ("Balancing Privacy and Action Performance", METHODS.md C).

    anonvid train --config configs/penalty.py:synthetic --workdir /tmp/penalty
    anonvid train --config configs/penalty.py:synthetic,smoke --workdir /tmp/penalty_smoke
    anonvid train --config configs/penalty.py:synthetic,identity --workdir /tmp/identity    # f_A pretraining only
    anonvid train --config configs/penalty.py:synthetic --workdir /tmp/penalty --config.identity_init=/tmp/identity
    anonvid train --config configs/penalty.py:ucf101_vispr --workdir /tmp/ucf101_vispr     # prepared UCF101 + VISPR

`synthetic` (2-core CPU): 8×32² clips of the synthetic benchmark (512 train / 128 validation / 256 test); a
UNet++ of widths 8-16-32, an R3D action branch and a ResNet-10 contrastive privacy branch at CPU widths;
identity pretraining, then per seed a 3-epoch warm-up of the branches and per B an 8-epoch minimax (paper: 100);
B ∈ {0.3, 0.5, 0.7, 0.9} × 3 seeds; fresh R3D action model (10 epochs) and ResNet-10 attacker (12 epochs).
The learning rates are 1e-3 for all three networks: the paper's 4e-5 / 1e-4 are for ~60 k updates of pretrained
networks; here f_A gets ~260 updates and the branches start from scratch.

`ucf101_vispr`: the paper's settings — UNet++ with a ResNet encoder (2 basic blocks per level, widths
64-64-128-256-512; the paper's decoder is 256-128-64-32 on ResNet-18, here each decoder level has its
encoder level's width), R3D-18 at 16×112² (stride 2), ResNet-50 + 2048→2048→128 projection, NT-Xent τ 0.1,
Adam 4e-5 / 1e-4 / 1e-4, batch 8 clips + 8 VISPR image pairs, 100 epochs; fresh R3D-18 on anonymized UCF101
and a fresh ResNet-50 attacker on anonymized VISPR1 images (7 attributes). Needs `anonvid data prepare ucf101
--manual_dir ... --config split1` and `anonvid data prepare vispr --manual_dir ... --config vispr1`, and a GPU.

Arguments: `synthetic` | `ucf101_vispr`, plus `identity` (only the identity pretraining, its own experiment and
checkpoint), `smoke`, `demo`, `seed=`, `epochs=` (minimax epochs). Override anything with
`--config.<field>=...`, e.g. `--config.sweep.budgets='(0.3,)' --config.sweep.seeds='(0, 1, 2)'`,
`--config.penalty.budget.kind=feature` (the feature-space penalty), `--config.sweep.weights='(0.5, 1.0)'` (λ).
"""
import ml_collections

from anonvid import config_defaults as D
from anonvid.configlib import ConfigError, parse_arg
from anonvid.trainers import adversarial, identity


def get_config(arg=None):
    a = parse_arg(arg, synthetic=False, ucf101_vispr=False, identity=False, smoke=False, demo=False, seed=0,
                  epochs=0)
    if a.synthetic == a.ucf101_vispr:
        raise ConfigError("choose exactly one of synthetic, ucf101_vispr (e.g. configs/penalty.py:synthetic)")
    cfg = ml_collections.ConfigDict()
    cfg.experiment = "identity" if a.identity else "penalty"
    cfg.distributed = D.distributed()
    cfg.identity = identity.default_config(smoke=a.smoke, seed=a.seed)
    cfg.penalty = adversarial.default_config(smoke=a.smoke, seed=a.seed)
    # "" = pretrain f_A to the identity inside the workdir; a path = an `identity` run's folder (or its export).
    cfg.identity_init = ""
    cfg.sweep = ml_collections.ConfigDict(dict(budgets=(0.3, 0.5, 0.7, 0.9), weights=(1.0,), omegas=(1.0,),
                                               seeds=(a.seed, a.seed + 1, a.seed + 2)))
    cfg.pictures = ml_collections.ConfigDict(dict(clips=(0, 1, 2, 3)))
    cfg.privacy_data = ml_collections.ConfigDict(dict(name=""))  # "" = the action clips' frames and labels
    if a.synthetic:
        cfg.data = D.synthetic_actions(smoke=a.smoke, num_frames=8, size=32, train_size=512, test_size=256,
                                       seed=a.seed)
        cfg.data.val_size = 16 if a.smoke else 128
        cfg.identity.epochs = 1 if a.smoke else 10
        for net in ("anonymizer", "action", "privacy"):
            cfg.penalty[net].lr = 1e-3
        cfg.penalty.warmup_epochs = 1 if a.smoke else 3
        cfg.penalty.epochs = a.epochs or (1 if a.smoke else 8)
        cfg.action = D.action_model(smoke=a.smoke, epochs=10, seed=a.seed)
        cfg.attacker = D.privacy_attacker(smoke=a.smoke, epochs=12, seed=a.seed)
        if a.smoke:
            cfg.sweep.budgets, cfg.sweep.seeds = (0.3,), (a.seed,)
            cfg.pictures.clips = (0, 1)
            for section in (cfg.identity, cfg.penalty):
                section.compiler_options = ml_collections.ConfigDict({"xla_backend_optimization_level": 0})
    else:
        cfg.data = ml_collections.ConfigDict(dict(name="ucf101", data_dir="", config="split1", num_frames=16,
                                                  frame_stride=2, height=112, width=112, train_clips=1,
                                                  test_clips=5, seed=a.seed))
        cfg.privacy_data = ml_collections.ConfigDict(dict(name="vispr", data_dir="", config="vispr1", height=112,
                                                          width=112))
        cfg.penalty.anonymizer.model.kwargs = dict(widths=(64, 64, 128, 256, 512), encoder="resnet",
                                                   resnet_blocks=2)
        cfg.identity.epochs = 10
        cfg.penalty.action.model.kwargs = dict(widths=(64, 128, 256, 512), blocks=(2, 2, 2, 2), stem="kinetics",
                                               stem_stride=(1, 2, 2), temporal_stride=True, temporal_center=False)
        cfg.penalty.privacy.model.kwargs = dict(proj_hidden=2048, depth=50, width=64, stem="imagenet",
                                                stem_stride=1)
        cfg.penalty.privacy.model.proj_dim = 128
        cfg.penalty.privacy.augment.crop_scale = (0.2, 1.0)
        cfg.penalty.warmup_epochs = 1
        cfg.penalty.epochs = a.epochs or 100
        cfg.penalty.eval_batch_size = 16
        cfg.action = D.action_model(smoke=a.smoke, epochs=30, seed=a.seed)
        cfg.action.model.kwargs = dict(cfg.penalty.action.model.kwargs)
        cfg.attacker = D.privacy_attacker(smoke=a.smoke, epochs=30, seed=a.seed)
        cfg.attacker.model.kwargs = dict(depth=50, width=64, stem="imagenet", stem_stride=2,
                                         temporal_pool="mean_logits")
        cfg.attacker.train_frames = 0
    if a.demo:
        if not a.synthetic:
            raise ConfigError("'demo' goes with 'synthetic'")
        cfg.sweep.budgets, cfg.sweep.seeds = (0.3,), (a.seed,)
        cfg.penalty.warmup_epochs = 1 if a.smoke else 2
        cfg.penalty.epochs = a.epochs or (1 if a.smoke else 4)
        cfg.identity.epochs = 1 if a.smoke else 5
    # identity pretraining reads the same data section (its frames come from the action clips)
    cfg.identity.model = cfg.penalty.anonymizer.model
    return cfg
