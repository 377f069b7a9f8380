"""Config strings, typed args, overrides and their error messages."""
import pytest

from anonvid.configlib import ConfigError, load_config, parse_arg


def test_parse_arg_types_flags_and_tuples():
    cfg = parse_arg("smoke,steps=3,lr=1e-3,name=x,blocks=3:6:9", smoke=False, steps=10, lr=0.1, name="a",
                    blocks=(1,))
    assert cfg.smoke is True and cfg.steps == 3 and cfg.lr == pytest.approx(1e-3) and cfg.name == "x"
    assert cfg.blocks == (3, 6, 9)
    assert parse_arg("", steps=10).steps == 10


@pytest.mark.parametrize("arg,match", [
    ("stpes=3", "unknown config arg 'stpes'.*known args: smoke, steps"),
    ("steps=abc", "expected int"),
    ("steps", "needs a value"),
    ("smoke=maybe", "expected a boolean"),
])
def test_parse_arg_errors_name_the_problem(arg, match):
    with pytest.raises(ConfigError, match=match):
        parse_arg(arg, steps=10, smoke=False)


def test_load_config_with_overrides_and_locked_keys():
    cfg = load_config("configs/leakage.py:synthetic,smoke", ["--config.action.optim.lr=0.5",
                                                            "--config.attacker.epochs=3"])
    assert cfg.action.optim.lr == 0.5 and cfg.attacker.epochs == 3 and cfg.data.num_frames == 8
    with pytest.raises(ConfigError, match="unknown config field 'action.optim.lrr'.*known: .*lr"):
        load_config("configs/leakage.py:synthetic", ["--config.action.optim.lrr=0.5"])
    with pytest.raises(ConfigError, match="invalid literal"):
        load_config("configs/leakage.py:synthetic", ["--config.attacker.epochs=many"])
    with pytest.raises(ConfigError, match="unknown config arg 'smok'"):
        load_config("configs/leakage.py:synthetic,smok")
    with pytest.raises(ConfigError, match="does not exist.*known configs: .*leakage.py"):
        load_config("configs/nope.py:synthetic")
    # a bare file name resolves to the shipped configs
    assert load_config("classifier.py:smoke,task=privacy").task == "privacy"
    with pytest.raises(ConfigError, match="task=action or task=privacy"):
        load_config("classifier.py:task=gender")
