"""Experiment registry: a config's `experiment` field → the runner `anonvid train` calls.

Every runner takes `(cfg, workdir, progress)`, is resumable from `workdir`, and writes machine-readable results
(`results.json`) plus the pictures a person would rather look at into it.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import ml_collections

from anonvid.data import datasets
from anonvid.protocols import leakage
from anonvid.trainers import classifier, dual_vit

ANONYMIZERS: dict[str, Callable[[ml_collections.ConfigDict], leakage.Anonymizer]] = {
    "identity": lambda cfg: leakage.identity,
}


def _write_json(path: str, payload: Any) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=1, default=str)
    os.replace(tmp, path)


def run_classifier(cfg: ml_collections.ConfigDict, workdir: str, progress: bool = True) -> dict:
    """Trains one classifier (`cfg.task`) on the configured dataset; resumes from `workdir`."""
    train = datasets.load_split(cfg.data, "train")
    test = datasets.load_split(cfg.data, "test")
    name = cfg.data.name
    outputs = datasets.NUM_CLASSES[name] if cfg.task == "action" else len(datasets.ATTRIBUTES[name])
    out = classifier.train_classifier(cfg, train, test, task=cfg.task, num_outputs=outputs, workdir=workdir,
                                      progress=progress)
    result = {k: out[k] for k in ("history", "final", "best", "steps")}
    _write_json(os.path.join(workdir, "results.json"), result)
    return result


def run_leakage(cfg: ml_collections.ConfigDict, workdir: str, progress: bool = True) -> dict:
    """The fresh-attacker protocol for the configured anonymizer (`identity` = raw reference)."""
    if cfg.anonymizer not in ANONYMIZERS:
        raise ValueError(f"unknown anonymizer {cfg.anonymizer!r}; known: {', '.join(sorted(ANONYMIZERS))}")
    train = datasets.load_split(cfg.data, "train")
    test = datasets.load_split(cfg.data, "test")
    name = cfg.data.name
    row = leakage.run(cfg, ANONYMIZERS[cfg.anonymizer](cfg),
                      name="raw" if cfg.anonymizer == "identity" else cfg.anonymizer, train=train, test=test,
                      num_classes=datasets.NUM_CLASSES[name], attribute_names=datasets.ATTRIBUTES[name],
                      workdir=workdir, progress=progress)
    result = {"rows": [row], "table": leakage.markdown_table([row])}
    _write_json(os.path.join(workdir, "results.json"), result)
    return result


def run_minimization(cfg: ml_collections.ConfigDict, workdir: str, progress: bool = True) -> dict:
    """The data-minimization grid (METHODS.md B): VAD utility and adaptive-attacker leakage per configuration,
    then the trade-off analysis (`results.csv`, `results.md`, `tradeoff/`)."""
    from anonvid.protocols import grid

    configs = grid.configurations(cfg)  # a bad spec fails before any data is generated
    vad_train = datasets.load_split(cfg.vad_data, "train")
    vad_test = datasets.load_split(cfg.vad_data, "test")
    attack_train = datasets.load_split(cfg.attack_data, "train")
    attack_test = datasets.load_split(cfg.attack_data, "test")
    out = grid.run(cfg, vad_train=vad_train, vad_test=vad_test, attack_train=attack_train, attack_test=attack_test,
                   attribute_names=datasets.ATTRIBUTES[cfg.attack_data.name], workdir=workdir, progress=progress)
    result = {"configurations": len(configs), "rows": [{k: r[k] for k in grid.RESULT_COLUMNS} for r in out["rows"]],
              "summary": out["summary"], "table": grid.markdown_table(out["rows"], out["summary"])}
    _write_json(os.path.join(workdir, "results.json"), result)
    return result


def run_pruning(cfg: ml_collections.ConfigDict, workdir: str, progress: bool = True) -> dict:
    """Attention-driven tubelet pruning (METHODS.md A): trains the pruners, then the table of fresh-attacker rows
    (raw, baselines, random pruning, both privacy-branch modes), the λ_priv × keep sweep, plot and pictures."""
    from anonvid.protocols import pruning_table

    dual_vit.check_config(cfg.pruner)  # a bad mode or augmentation fails before any data is generated
    train = datasets.load_split(cfg.data, "train")
    test = datasets.load_split(cfg.data, "test")
    name = cfg.data.name
    result = pruning_table.run(cfg, train=train, test=test, num_classes=datasets.NUM_CLASSES[name],
                               attribute_names=datasets.ATTRIBUTES[name], workdir=workdir, progress=progress)
    _write_json(os.path.join(workdir, "results.json"), result)
    with open(os.path.join(workdir, "results.md"), "w", encoding="utf-8") as f:
        f.write(pruning_table.results_markdown(result))
    return result


def _privacy_splits(cfg: ml_collections.ConfigDict, splits: tuple[str, ...]) -> dict | None:
    """Method C's separate privacy data (`privacy_data.name`, e.g. VISPR images), or None (the action clips')."""
    if cfg.get("privacy_data") is None or not cfg.privacy_data.get("name"):
        return None
    return {s: datasets.load_split(cfg.privacy_data, s) for s in splits}


def run_penalty(cfg: ml_collections.ConfigDict, workdir: str, progress: bool = True) -> dict:
    """The penalty-driven anonymizer (METHODS.md C): identity pretraining, the B × seed sweep of the minimax
    with its checkpoint rule, fresh-attacker rows, mean ± std per setting, plots (`results.md/json`)."""
    from anonvid.protocols import penalty_table

    penalty_table.check_config(cfg)  # a bad budget or a missing pretrained anonymizer fails before any data
    train, val, test = (datasets.load_split(cfg.data, s) for s in ("train", "val", "test"))
    privacy = _privacy_splits(cfg, ("train", "val", "test"))
    attributes = datasets.ATTRIBUTES[cfg.privacy_data.name if privacy else cfg.data.name]
    result = penalty_table.run(cfg, train=train, val=val, test=test, num_classes=datasets.NUM_CLASSES[cfg.data.name],
                               attribute_names=attributes, workdir=workdir, privacy=privacy, progress=progress)
    _write_json(os.path.join(workdir, "results.json"), result)
    with open(os.path.join(workdir, "results.md"), "w", encoding="utf-8") as f:
        f.write(penalty_table.results_markdown(result))
    return result


def run_identity(cfg: ml_collections.ConfigDict, workdir: str, progress: bool = True) -> dict:
    """Identity pretraining of the anonymizer alone (its own config and checkpoint; exports `workdir/anonymizer`,
    which `configs/penalty.py` takes as `identity_init`)."""
    from anonvid.protocols import penalty_table

    train, val = datasets.load_split(cfg.data, "train"), datasets.load_split(cfg.data, "val")
    privacy = _privacy_splits(cfg, ("train", "val"))
    out = penalty_table.pretrain_identity(cfg, train, val, workdir, progress, privacy)
    result = {"history": out["history"], "final": out["final"], "steps": out["steps"],
              "export": os.path.join(workdir, "anonymizer")}
    _write_json(os.path.join(workdir, "results.json"), result)
    return result


EXPERIMENTS: dict[str, Callable[..., dict]] = {"classifier": run_classifier, "identity": run_identity,
                                               "leakage": run_leakage, "minimization": run_minimization,
                                               "penalty": run_penalty, "pruning": run_pruning}


def evaluate_experiment(cfg: ml_collections.ConfigDict, workdir: str, progress: bool = True) -> dict:
    """`anonvid eval`: evaluates a trained run without training.

    A classifier run's last checkpoint is evaluated afresh on the test split (written to `eval.json`). Any other
    experiment is a table of several trained models: its finished run's `results.json` is read back.

    Raises:
      FileNotFoundError: `workdir` does not exist, has no checkpoint (classifier) or no finished results.
    """
    if not os.path.isdir(workdir):
        raise FileNotFoundError(f"{workdir!r} does not exist; train it first with `anonvid train --config ... "
                                f"--workdir {workdir}`")
    if cfg.experiment == "classifier":
        name = cfg.data.name
        outputs = datasets.NUM_CLASSES[name] if cfg.task == "action" else len(datasets.ATTRIBUTES[name])
        # the train split is not trained on; it rebuilds the run's data iterator, whose position the checkpoint holds
        train = datasets.load_split(cfg.data, "train")
        test = datasets.load_split(cfg.data, "test")
        out = classifier.train_classifier(cfg, train, test, task=cfg.task, num_outputs=outputs, workdir=workdir,
                                          progress=progress, evaluate_only=True)
        _write_json(os.path.join(workdir, "eval.json"), out)
        return out
    path = os.path.join(workdir, "results.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{workdir!r} holds no finished {cfg.experiment} run (no results.json); resume it "
                                f"with `anonvid train` and the same arguments")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def run_experiment(cfg: ml_collections.ConfigDict, workdir: str, progress: bool = True) -> dict:
    """Runs the experiment named by `cfg.experiment` in `workdir` (created if missing)."""
    if cfg.experiment not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {cfg.experiment!r}; known: {', '.join(sorted(EXPERIMENTS))}")
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "config.json"), "w", encoding="utf-8") as f:
        f.write(cfg.to_json_best_effort(indent=1))
    return EXPERIMENTS[cfg.experiment](cfg, workdir, progress)
