"""The data-minimization grid (METHODS.md B): every configuration scored for utility (VAD) and leakage (attacker).

A configuration is a minimization spec (`anonvid.minimize`, e.g. "ts(5)|blur(4)"). For each one:
- **utility**: the spec is applied to the VAD model's training *and* test videos (frame labels follow temporal
  sampling), a fresh ConvLSTM autoencoder is trained on the minimized normal videos, and the pooled frame
  ROC-AUC / AP of its window scores are reported;
- **leakage**: the spec is applied to the attacker's training and test clips, a fresh 2-D ResNet attacker (features
  max-pooled over time) is trained on the minimized clips — an *adaptive* attacker — and its best epoch's cMAP
  and macro-F1 on the full minimized test split are reported (each maximised over epochs, the worst case).

The configurations are either the paper's ordered-pair grid over named mechanisms (`pair_grid`: cell (i, j) =
mechanism i first, then j; the diagonal = one mechanism alone) or any user list of specs. Cells whose pipelines
are equal because the two operations commute (temporal sampling with a per-frame depth op) are run once and the
row lists every cell it stands for (`cells`), so the heat maps are complete. Background removal does not commute
with temporal sampling (its background model sees different frames), so its two orders are two configurations.

Resumable: each finished configuration's row is stored in `workdir/<name>/result.json` and read back, never run
again; the VAD model and the attacker checkpoint inside their own folders, so an interrupted configuration
resumes mid-training.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import os
import time
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from tqdm.auto import tqdm

from anonvid import minimize
from anonvid.protocols import leakage
from anonvid.trainers import classifier, vad

RESULT_COLUMNS = ("name", "cells", "spec", "auc", "ap", "cmap", "f1", "vad_frames", "vad_shape", "attacker_shape",
                  "seconds")


@dataclasses.dataclass(frozen=True)
class Configuration:
    """One distinct minimization configuration of the grid.

    Attributes:
      name: row name (the first grid cell it stands for, e.g. "TS+BL", or the spec for a user list).
      spec: canonical minimization spec, e.g. "ts(5)|blur(4)".
      cells: every grid-cell name this configuration stands for (commuting orders share one run).
    """
    name: str
    spec: str
    cells: tuple[str, ...]


def parse_mechanisms(items: Sequence[str]) -> list[tuple[str, str]]:
    """Parses `("TS=ts(5)", "BL=blur(4)", ...)` into ordered (label, spec) pairs, validating each spec."""
    out: list[tuple[str, str]] = []
    for item in items:
        label, sep, spec = str(item).partition("=")
        label, spec = label.strip(), spec.strip()
        if not sep or not label or not spec or "+" in label:
            raise ValueError(f"mechanism {item!r}: write LABEL=SPEC, e.g. 'BL=blur(4)' (labels may not contain '+')")
        if label in dict(out):
            raise ValueError(f"mechanism label {label!r} is given twice")
        minimize.parse(spec)  # fails early, naming the bad token
        out.append((label, spec))
    if not out:
        raise ValueError("give at least one mechanism LABEL=SPEC")
    return out


def _commute(a: str, b: str) -> bool:
    """True when applying spec a then b equals b then a: one side is pure temporal sampling and every op on the
    other side declares that it commutes with temporal sampling."""
    pa, pb = minimize.parse(a), minimize.parse(b)

    def breadth_only(p: minimize.Pipeline) -> bool:
        return p.has_breadth and not p.has_depth

    return (breadth_only(pa) and pb.commutes_with_ts) or (breadth_only(pb) and pa.commutes_with_ts)


def pair_grid(mechanisms: Sequence[tuple[str, str]]) -> list[Configuration]:
    """The ordered-pair grid: n×n cells, de-duplicated where the two orders commute.

    Args:
      mechanisms: ordered (label, spec) pairs, e.g. [("TS", "ts(5)"), ("DS", "ds(2)"), ...].

    Returns:
      Distinct configurations in row-major cell order (the paper's 5×5 over TS, DS, MK, BL, BR: 21 when every
      depth op commutes with TS; background removal does not, so 22 here).
    """
    configs: list[Configuration] = []
    merged: dict[tuple[str, str], int] = {}
    for la, sa in mechanisms:
        for lb, sb in mechanisms:
            if la == lb:
                configs.append(Configuration(la, str(minimize.parse(sa)), (la,)))
                continue
            name = f"{la}+{lb}"
            if (lb, la) in merged:
                k = merged[(lb, la)]
                configs[k] = dataclasses.replace(configs[k], cells=configs[k].cells + (name,))
                continue
            if _commute(sa, sb):
                merged[(la, lb)] = len(configs)
            configs.append(Configuration(name, str(minimize.parse(f"{sa}|{sb}")), (name,)))
    return configs


def spec_list(specs: Sequence[str]) -> list[Configuration]:
    """A user list of specs: one configuration each, named by its canonical spec (duplicates are an error)."""
    configs = []
    for s in specs:
        canon = str(minimize.parse(s))
        if any(c.spec == canon for c in configs):
            raise ValueError(f"spec {s!r} is listed twice (canonical form {canon!r})")
        configs.append(Configuration(canon or "raw", canon, (canon or "raw",)))
    if not configs:
        raise ValueError("give at least one spec")
    return configs


def configurations(cfg: ml_collections.ConfigDict) -> list[Configuration]:
    """The configurations a grid config asks for: `grid.specs` if non-empty, else the pair grid of
    `grid.mechanisms`, restricted to the cells named in `grid.only` when that is non-empty."""
    if cfg.grid.specs:
        return spec_list(list(cfg.grid.specs))
    configs = pair_grid(parse_mechanisms(list(cfg.grid.mechanisms)))
    only = tuple(cfg.grid.get("only", ()) or ())
    if only:
        known = [c for conf in configs for c in conf.cells]
        unknown = [c for c in only if c not in known]
        if unknown:
            raise ValueError(f"grid.only names unknown cells {unknown}; the grid's cells are {', '.join(known)}")
        configs = [c for c in configs if set(c.cells) & set(only)]
    return configs


def minimize_videos(pipe: minimize.Pipeline, videos, labels=None, *,
                    batch: int = 4) -> tuple[Any, Any]:
    """Applies a pipeline to whole videos `(V, F, H, W, C)` uint8 in jitted batches; frame labels `(V, F)` follow
    temporal sampling. Background models are per video, so long videos warm up as in the paper.

    Videos of different lengths (a real dataset such as UCSD Ped2) come as a list of `(F_i, H, W, C)` arrays
    with a list of `(F_i,)` labels and are returned as lists, one video at a time (one compile per length).
    """
    fn = jax.jit(pipe.apply)
    if isinstance(videos, (list, tuple)):
        out = [np.asarray(fn(jnp.asarray(v)[None]))[0] for v in videos]
        if labels is None:
            return out, None
        return out, [np.asarray(y)[np.asarray(pipe.frame_indices(len(y)))] for y in labels]
    out = []
    for start in range(0, len(videos), batch):
        out.append(np.asarray(fn(jnp.asarray(videos[start:start + batch]))))
    kept = np.asarray(pipe.frame_indices(videos.shape[1]))
    return np.concatenate(out), (None if labels is None else np.asarray(labels)[:, kept])


def run_configuration(cfg: ml_collections.ConfigDict, conf: Configuration, *, vad_train: Mapping[str, np.ndarray],
                      vad_test: Mapping[str, np.ndarray], attack_train: Mapping[str, np.ndarray],
                      attack_test: Mapping[str, np.ndarray], attribute_names: Sequence[str],
                      workdir: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Scores one configuration (utility and leakage); resumable through `workdir`. Returns its row."""
    row_dir = os.path.join(workdir, leakage._safe(conf.name)) if workdir else None
    result_path = os.path.join(row_dir, "result.json") if row_dir else None
    if result_path and os.path.exists(result_path):
        with open(result_path, encoding="utf-8") as f:
            return json.load(f)
    start = time.time()
    pipe = minimize.parse(conf.spec)
    train_v, _ = minimize_videos(pipe, vad_train["video"])
    test_v, test_y = minimize_videos(pipe, vad_test["video"], vad_test["anomaly"])
    model = vad.train_vad(cfg.vad, train_v, workdir=os.path.join(row_dir, "vad") if row_dir else None,
                          progress=progress, desc=f"{conf.name}: VAD")
    utility = vad.evaluate_vad(model, test_v, test_y)

    anonymize = lambda clips: pipe.apply(clips)  # noqa: E731  (float clips in [0, 1] stay float)
    anon_train = leakage.anonymize_split(anonymize, attack_train, progress=progress, desc=f"{conf.name}: train")
    anon_test = leakage.anonymize_split(anonymize, attack_test, progress=progress, desc=f"{conf.name}: test")
    attacker = classifier.train_classifier(
        cfg.attacker, anon_train, anon_test, task="privacy", num_outputs=len(attribute_names),
        workdir=os.path.join(row_dir, "attacker") if row_dir else None, progress=progress,
        desc=f"{conf.name}: attacker")
    history = attacker["history"]
    row = {
        "name": conf.name,
        "cells": " ".join(conf.cells),
        "spec": conf.spec,
        "auc": utility["auc"],
        "ap": utility["ap"],
        "cmap": max(r["cmap"] for r in history),
        "f1": max(r["f1"] for r in history),
        "vad_frames": utility["scored_frames"],
        "vad_shape": "x".join(str(d) for d in test_v.shape[1:]),
        "attacker_shape": "x".join(str(d) for d in anon_test["video"].shape[1:]),
        "seconds": round(time.time() - start, 1),
        "vad_history": model["history"],
        "attacker_history": history,
    }
    if result_path:
        os.makedirs(row_dir, exist_ok=True)
        tmp = result_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(row, f, indent=1, default=float)
        os.replace(tmp, result_path)
    return row


def run(cfg: ml_collections.ConfigDict, *, vad_train: Mapping[str, np.ndarray], vad_test: Mapping[str, np.ndarray],
        attack_train: Mapping[str, np.ndarray], attack_test: Mapping[str, np.ndarray],
        attribute_names: Sequence[str], workdir: str, progress: bool = True) -> dict[str, Any]:
    """Runs every configuration of `cfg.grid`, writes `results.csv` / `results.md`, and the trade-off analysis.

    Args:
      cfg: config with `grid` (mechanisms or specs, objectives, weights), `vad` and `attacker` sections.
      vad_train, vad_test: surveillance splits (`video` (V,F,H,W,C) uint8; test also `anomaly` (V,F)).
      attack_train, attack_test: privacy splits (`video` (N,T,H,W,3) uint8, `privacy` (N,A)).
      attribute_names: privacy attribute names.
      workdir: output folder (resumable).
      progress: show progress bars.

    Returns:
      `{"rows": [...], "summary": trade-off summary (pareto, sweet_spot, hypervolume, knee, figures)}`.
    """
    from anonvid import tradeoff_report

    configs = configurations(cfg)
    os.makedirs(workdir, exist_ok=True)
    rows = []
    bar = tqdm(configs, desc="minimization grid", disable=not progress, leave=True, dynamic_ncols=True)
    for conf in bar:
        bar.set_postfix_str(conf.name)
        rows.append(run_configuration(cfg, conf, vad_train=vad_train, vad_test=vad_test, attack_train=attack_train,
                                      attack_test=attack_test, attribute_names=attribute_names,
                                      workdir=os.path.join(workdir, "configs"), progress=progress))
    table = os.path.join(workdir, "results.csv")
    with open(table, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=RESULT_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    objectives = list(cfg.grid.objectives)
    weights = ",".join(str(w) for w in cfg.grid.weights) if cfg.grid.weights else None
    summary = tradeoff_report.run(table, objectives, os.path.join(workdir, "tradeoff"), weights=weights)
    with open(os.path.join(workdir, "results.md"), "w", encoding="utf-8") as f:
        f.write(markdown_table(rows, summary) + "\n")
    return {"rows": rows, "summary": summary}


def markdown_table(rows: Sequence[Mapping[str, Any]], summary: Mapping[str, Any] | None = None) -> str:
    """The grid's results as a markdown table (AUC/AP ×100, cMAP in %, F1 ×100); Pareto rows bold-marked."""
    pareto = set((summary or {}).get("pareto", []))
    sweet = (summary or {}).get("sweet_spot")
    lines = ["| configuration | spec | frame AUC | AP | attacker cMAP | attacker F1 | Pareto |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        mark = "**sweet spot**" if r["name"] == sweet else ("yes" if r["name"] in pareto else "")
        lines.append(f"| {r['name']} | `{r['spec']}` | {100 * r['auc']:.2f} | {100 * r['ap']:.2f} | "
                     f"{r['cmap']:.2f} | {100 * r['f1']:.2f} | {mark} |")
    return "\n".join(lines)
