"""Experiment configs: the `get_config(arg)` argument parser and the loader for `FILE:ARGS` strings.

Every file in `configs/` exposes `get_config(arg)`. `arg` is a comma list such as `"synthetic,smoke"` or
`"synthetic,steps=200,lr=3e-4"`: bare words are boolean flags, `key=value` pairs are typed by the default they
replace. `parse_arg` turns it into a locked `ConfigDict` so that a misspelt key fails loudly, naming the known
keys.

`load_config("configs/classifier.py:synthetic,smoke", overrides=["--config.steps=3"])` is what the CLI uses;
overrides go through `ml_collections.config_flags`, so `--config.a.b=value` works for any nested field and an
unknown field is an error.
"""
from __future__ import annotations

import importlib.util
import os
from typing import Any, Iterable, Sequence

import ml_collections


class ConfigError(ValueError):
    """A config string, key or value is wrong; the message says which and how to fix it."""


def _coerce(key: str, text: str, default: Any) -> Any:
    """Parses `text` into the type of `default` (bool, int, float, str or tuple of those)."""
    if isinstance(default, bool):
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"config arg {key}={text!r}: expected a boolean (true/false)")
    try:
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
        if isinstance(default, tuple):
            items = [t for t in text.split(":") if t]
            element = default[0] if default else ""
            return tuple(_coerce(key, t, element) for t in items)
    except ValueError as err:
        raise ConfigError(
            f"config arg {key}={text!r}: expected {type(default).__name__} like {default!r}") from err
    return text


def parse_arg(arg: str | None, **defaults: Any) -> ml_collections.ConfigDict:
    """Parses a `get_config` argument string against typed defaults.

    Args:
      arg: comma list of `flag` (sets a boolean default to True) and `key=value` items; tuples use `:`
        between elements (`keep_blocks=3:6:9`). None or "" keeps every default.
      **defaults: the allowed keys and their default values; the default's type types the value.

    Returns:
      A locked `ConfigDict` with every key of `defaults`.

    Raises:
      ConfigError: for an unknown key, a value of the wrong type, or a flag given to a non-boolean key.
    """
    values = dict(defaults)
    for item in (arg or "").split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, text = item.partition("=")
        key = key.strip()
        if key not in defaults:
            raise ConfigError(
                f"unknown config arg {key!r} in {arg!r}; known args: {', '.join(sorted(defaults))}")
        if not sep:
            if not isinstance(defaults[key], bool):
                raise ConfigError(f"config arg {key!r} needs a value: {key}=<{type(defaults[key]).__name__}>")
            values[key] = True
        else:
            values[key] = _coerce(key, text.strip(), defaults[key])
    cfg = ml_collections.ConfigDict(values)
    cfg.lock()
    return cfg


def _load_module(path: str):
    if not os.path.isfile(path):
        raise ConfigError(f"config file {path!r} does not exist; pass e.g. configs/classifier.py:synthetic")
    spec = importlib.util.spec_from_file_location(f"anonvid_config_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "get_config"):
        raise ConfigError(f"config file {path!r} has no get_config(arg) function")
    return module


def resolve_config_path(path: str) -> str:
    """Finds a config file given as a path, or as a name relative to the installed `configs/` package."""
    if os.path.isfile(path):
        return path
    here = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")
    candidate = os.path.join(here, os.path.basename(path))
    if os.path.isfile(candidate):
        return candidate
    raise ConfigError(
        f"config file {path!r} does not exist; known configs: "
        f"{', '.join(sorted(f for f in os.listdir(here) if f.endswith('.py') and not f.startswith('_')))}")


def _check_field(cfg: ml_collections.ConfigDict, dotted: str) -> None:
    node = cfg
    walked = []
    for part in dotted.split("."):
        if not isinstance(node, ml_collections.ConfigDict) or part not in node:
            known = ", ".join(sorted(node.keys())) if isinstance(node, ml_collections.ConfigDict) else "(none)"
            where = ".".join(walked) or "the config"
            raise ConfigError(f"unknown config field {dotted!r}: {where} has no {part!r}; known: {known}")
        walked.append(part)
        node = node[part]


def set_fields(cfg: ml_collections.ConfigDict, values: dict[str, Any]) -> ml_collections.ConfigDict:
    """Sets existing fields by dotted name (`{"model.kwargs.dim": 96}`) in place; an unknown one raises
    `ConfigError` naming the known fields at that level. Returns `cfg`."""
    for dotted, value in values.items():
        _check_field(cfg, dotted)
        *parents, last = dotted.split(".")
        node = cfg
        for part in parents:
            node = node[part]
        node[last] = value
    return cfg


def apply_overrides(cfg: ml_collections.ConfigDict, overrides: Iterable[str]) -> ml_collections.ConfigDict:
    """Applies `--config.a.b=value` strings to a config; an unknown field raises `ConfigError`."""
    from absl import flags
    from ml_collections import config_flags

    overrides = list(overrides)
    if not overrides:
        return cfg
    flag_values = flags.FlagValues()
    for item in overrides:
        if not item.startswith("--config."):
            raise ConfigError(f"override {item!r} must look like --config.field=value")
        _check_field(cfg, item[len("--config."):].partition("=")[0])
    argv = ["anonvid"] + overrides
    try:
        # config_flags discovers which `--config.*` flags to define from `sys_argv` at definition time.
        config_flags.DEFINE_config_dict("config", cfg, flag_values=flag_values, lock_config=True, sys_argv=argv)
        flag_values(argv)
    except (flags.Error, AttributeError, KeyError, ValueError, TypeError) as err:
        raise ConfigError(f"bad config override in {overrides}: {err}") from err
    return flag_values.config


def load_config(spec: str, overrides: Sequence[str] = ()) -> ml_collections.ConfigDict:
    """Loads `FILE:ARGS` (e.g. `configs/classifier.py:synthetic,smoke`) and applies `--config.*` overrides.

    Args:
      spec: config file path (or bare file name of a shipped config) optionally followed by `:ARGS`.
      overrides: strings of the form `--config.field=value`.

    Returns:
      The locked, overridden `ConfigDict`.
    """
    path, _, arg = spec.partition(":")
    module = _load_module(resolve_config_path(path))
    cfg = module.get_config(arg)
    if not isinstance(cfg, ml_collections.ConfigDict):
        raise ConfigError(f"{path}: get_config must return an ml_collections.ConfigDict")
    cfg.lock()
    return apply_overrides(cfg, overrides)
