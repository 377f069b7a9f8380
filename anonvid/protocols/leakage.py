"""The fresh-attacker protocol (Wu et al. TPAMI 2020; SPAct CVPR 2022).

Freeze an anonymizer; anonymize the train and test splits; train a *new* action model and a *new* privacy
attacker on the anonymized train split; report, on the *full* anonymized test split,
- action top-1 of the last epoch (and the best epoch, for reference), and
- privacy leakage as the attacker's best epoch (the worst case for privacy): the highest cMAP (%) and the
  highest macro-F1 over its epochs, each maximised separately.
The same action and attacker architectures are used for every row, raw included.

An anonymizer is any function from float clips `(B, T, H, W, 3)` in [0, 1] to float clips in [0, 1]; it may
change T, H or W (temporal sampling, downsampling) as long as it does so the same way for every batch.
"""
from __future__ import annotations

import json
import os
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from tqdm.auto import tqdm

from anonvid.trainers import classifier

Anonymizer = Callable[[jax.Array], jax.Array]
# A split-level anonymizer sees the whole split (e.g. ground-truth masks, or a per-clip random draw):
# `(split, split_name) -> split` with `video` replaced.
SplitAnonymizer = Callable[[Mapping[str, np.ndarray], str], dict]


def identity(clips: jax.Array) -> jax.Array:
    """The raw-video reference anonymizer."""
    return clips


def anonymize_split(anonymize: Anonymizer, data: Mapping[str, np.ndarray], *, batch_size: int = 64,
                    input_key: str = "video", progress: bool = False, desc: str = "anonymize") -> dict:
    """Applies `anonymize` to every clip of a split (jitted, in fixed-size batches) and returns a new split.

    The anonymized clips are stored as uint8 (rounded), as a video file would store them: the attacker never
    sees more precision than an anonymized video on disk would give it.
    """
    video = np.asarray(data[input_key])
    n = len(video)
    if n == 0:
        raise ValueError("cannot anonymize an empty split")
    fn = jax.jit(lambda x: jnp.round(jnp.clip(anonymize(x.astype(jnp.float32) / 255.0), 0.0, 1.0) * 255.0)
                 .astype(jnp.uint8))
    out = []
    for start in tqdm(range(0, n, batch_size), desc=desc, disable=not progress, leave=False):
        chunk = video[start:start + batch_size]
        pad = batch_size - len(chunk)
        if pad:  # keep one compiled shape: pad the last batch, drop the padding after
            chunk = np.concatenate([chunk, np.repeat(chunk[:1], pad, axis=0)])
        y = np.asarray(fn(jnp.asarray(chunk)))
        out.append(y[:batch_size - pad])
    result = dict(data)
    result[input_key] = np.concatenate(out)
    return result


def run(cfg: ml_collections.ConfigDict, anonymize: Anonymizer | None, *, name: str,
        train: Mapping[str, np.ndarray], test: Mapping[str, np.ndarray], num_classes: int,
        attribute_names: Sequence[str], workdir: str | None = None, progress: bool = True,
        split_anonymizer: SplitAnonymizer | None = None, attacker_train: Mapping[str, np.ndarray] | None = None,
        attacker_test: Mapping[str, np.ndarray] | None = None) -> dict[str, Any]:
    """Runs the fresh-attacker protocol for one anonymizer.

    Args:
      cfg: config with `action` and `attacker` classifier sections (see `anonvid.config_defaults`).
      anonymize: the frozen anonymizer (clips → clips); None when `split_anonymizer` is given.
      name: row name ("raw", "blur(4)", ...); also the sub-directory of `workdir`.
      train, test: raw splits with `video`, `action` and `privacy` arrays.
      num_classes: action classes.
      attribute_names: privacy attribute names, in label order.
      workdir: where each row's checkpoints and results go (resumable: a finished row is read back, not rerun).
      progress: show progress bars.
      split_anonymizer: instead of `anonymize`, a function `(split, split_name) -> split` for anonymizers that
        need more than the clips (ground-truth masks, per-clip random draws).
      attacker_train, attacker_test: the attacker's own splits (`video`, `privacy`), anonymized the same way,
        when privacy is measured on other data than the action (e.g. VISPR images as one-frame clips, METHODS.md
        C); default: `train` / `test`.

    Returns:
      The row: `name`, `top1`, `top1_best`, `cmap`, `f1`, `cmap_epoch`, `f1_epoch`, per-attribute AP-free
      histories (`action_history`, `attacker_history`).
    """
    row_dir = os.path.join(workdir, _safe(name)) if workdir else None
    result_path = os.path.join(row_dir, "result.json") if row_dir else None
    if result_path and os.path.exists(result_path):
        with open(result_path, encoding="utf-8") as f:
            return json.load(f)
    if (anonymize is None) == (split_anonymizer is None):
        raise ValueError("give exactly one of anonymize and split_anonymizer")

    def anonymized(split: Mapping[str, np.ndarray], split_name: str) -> dict:
        if split_anonymizer is not None:
            return split_anonymizer(split, split_name)
        return anonymize_split(anonymize, split, progress=progress, desc=f"{name}: anonymize {split_name}")

    anon_train, anon_test = anonymized(train, "train"), anonymized(test, "test")
    if attacker_train is not None or attacker_test is not None:
        if attacker_train is None or attacker_test is None:
            raise ValueError("give both attacker_train and attacker_test, or neither")
        att_train, att_test = anonymized(attacker_train, "attacker train"), anonymized(attacker_test, "attacker test")
    else:
        att_train, att_test = anon_train, anon_test
    action = classifier.train_classifier(
        cfg.action, anon_train, anon_test, task="action", num_outputs=num_classes,
        workdir=os.path.join(row_dir, "action") if row_dir else None, progress=progress,
        desc=f"{name}: action model")
    attacker = classifier.train_classifier(
        cfg.attacker, att_train, att_test, task="privacy", num_outputs=len(attribute_names),
        workdir=os.path.join(row_dir, "attacker") if row_dir else None, progress=progress,
        desc=f"{name}: attacker")
    cmap_best = max(attacker["history"], key=lambda r: r["cmap"])
    f1_best = max(attacker["history"], key=lambda r: r["f1"])
    row = {
        "name": name,
        "top1": action["final"]["top1"],
        "top1_best": action["best"]["top1"],
        "cmap": cmap_best["cmap"],
        "f1": f1_best["f1"],
        "cmap_epoch": cmap_best["epoch"],
        "f1_epoch": f1_best["epoch"],
        "test_clips": int(len(test["video"])),
        "attacker_test_clips": int(len(att_test["video"])),
        "attributes": list(attribute_names),
        "action_history": action["history"],
        "attacker_history": attacker["history"],
    }
    if result_path:
        os.makedirs(row_dir, exist_ok=True)
        tmp = result_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(row, f, indent=1)
        os.replace(tmp, result_path)
    return row


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The protocol's table: one row per anonymizer, top-1 ↑ / cMAP ↓ / F1 ↓."""
    lines = ["| anonymizer | action top-1 ↑ | privacy cMAP (%) ↓ | privacy macro-F1 ↓ |",
             "|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['name']} | {100 * r['top1']:.2f} | {r['cmap']:.2f} | {r['f1']:.3f} |")
    return "\n".join(lines)
