"""Fresh-attacker protocol on raw video: the raw-video reference row (action top-1, privacy cMAP and F1).

    anonvid train --config configs/leakage.py:synthetic --workdir /tmp/raw
    anonvid train --config configs/leakage.py:synthetic,smoke --workdir /tmp/raw_smoke
    anonvid train --config configs/leakage.py:synthetic,epochs=20 --workdir /tmp/raw --config.action.optim.lr=1e-3
"""
from anonvid import config_defaults as D
from anonvid.configlib import parse_arg


def get_config(arg=None):
    a = parse_arg(arg, synthetic=True, smoke=False, epochs=10, seed=0, size=32, frames=8, train_size=1024,
                  test_size=512)
    import ml_collections

    cfg = ml_collections.ConfigDict()
    cfg.experiment = "leakage"
    cfg.anonymizer = "identity"
    cfg.data = D.synthetic_actions(smoke=a.smoke, num_frames=a.frames, size=a.size, train_size=a.train_size,
                                   test_size=a.test_size, seed=a.seed)
    cfg.action = D.action_model(smoke=a.smoke, epochs=a.epochs, seed=a.seed)
    cfg.attacker = D.privacy_attacker(smoke=a.smoke, epochs=a.epochs, seed=a.seed)
    cfg.distributed = D.distributed()
    return cfg
