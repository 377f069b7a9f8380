"""Train one clip classifier: the action model (`task=action`) or the privacy attacker (`task=privacy`).

    anonvid train --config configs/classifier.py:synthetic --workdir /tmp/action
    anonvid train --config configs/classifier.py:synthetic,task=privacy --workdir /tmp/attacker
    anonvid train --config configs/classifier.py:synthetic,smoke --workdir /tmp/smoke --config.epochs=2
"""
from anonvid import config_defaults as D
from anonvid.configlib import ConfigError, parse_arg


def get_config(arg=None):
    a = parse_arg(arg, synthetic=True, smoke=False, task="action", epochs=10, seed=0, size=32, frames=8,
                  train_size=1024, test_size=512)
    if a.task not in ("action", "privacy"):
        raise ConfigError(f"task={a.task!r}: use task=action or task=privacy")
    make = D.action_model if a.task == "action" else D.privacy_attacker
    cfg = make(smoke=a.smoke, epochs=a.epochs, seed=a.seed)
    cfg.unlock()
    cfg.experiment = "classifier"
    cfg.task = a.task
    cfg.data = D.synthetic_actions(smoke=a.smoke, num_frames=a.frames, size=a.size, train_size=a.train_size,
                                   test_size=a.test_size, seed=a.seed)
    cfg.distributed = D.distributed()
    cfg.lock()
    return cfg
