"""Method C's experiment: identity pretraining, the budget × seed sweep of the minimax, the fresh-attacker rows.

    1. f_A is pretrained to the identity (`anonvid.trainers.identity`), or read from `identity_init`;
    2. per seed, one warm-up (f_T and f_B on raw input) that every setting of that seed starts from;
    3. per setting (B, λ, ω, seed): the minimax, the checkpoint rule, and the selected f_A through the
       fresh-attacker protocol (`anonvid.protocols.leakage`) — a new action model on the anonymized action
       clips, a new attacker on the anonymized privacy data (the same clips on the synthetic benchmark and
       PA-HMDB51; VISPR images as one-frame clips in the paper's VISPR1 protocol);
    4. mean ± std over seeds per setting, a plot of action top-1 and cMAP against B, a picture of raw vs
       anonymized frames for every B, and the issue's targets checked mechanically.

Settings run seed-major (every B of seed 0 first), so an interrupted sweep still has a whole first seed;
everything is resumable from `workdir`.
"""
from __future__ import annotations

import itertools
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import ml_collections
import numpy as np

from anonvid.models.unet import apply_per_frame
from anonvid.protocols import leakage
from anonvid.trainers import adversarial, identity

METRICS = ("top1", "cmap", "f1")


def _write_json(path: str, payload: Any) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=1, default=str)
    os.replace(tmp, path)


def setting_name(budget: float, weight: float, omega: float, kind: str) -> str:
    """Row label of a setting, e.g. "penalty B=0.3 λ=1 ω=1" (the kind is named when it is not "pixel")."""
    feature = "" if kind == "pixel" else f" {kind}"
    return f"penalty{feature} B={budget:g} λ={weight:g} ω={omega:g}"


def settings(cfg: ml_collections.ConfigDict) -> list[dict]:
    """The sweep's settings in run order: seed-major, then B, λ, ω."""
    out = []
    for seed, b, lam, om in itertools.product(cfg.sweep.seeds, cfg.sweep.budgets, cfg.sweep.weights,
                                              cfg.sweep.omegas):
        out.append({"seed": int(seed), "B": float(b), "weight": float(lam), "omega": float(om),
                    "name": setting_name(float(b), float(lam), float(om), cfg.penalty.budget.kind)})
    return out


def check_config(cfg: ml_collections.ConfigDict) -> None:
    """Fails fast on a bad budget, weight or model (every setting's config is checked before any training)."""
    if not cfg.sweep.seeds or not cfg.sweep.budgets:
        raise ValueError("sweep.seeds and sweep.budgets must be non-empty")
    for s in settings(cfg):
        adversarial.check_config(_setting_config(cfg, s, init=""))
    init = str(cfg.identity_init)
    if init:  # the user named a pretrained anonymizer: it must be there (no silent retraining)
        try:
            adversarial.check_config(_setting_config(cfg, settings(cfg)[0], init=init))
        except FileNotFoundError as err:
            raise FileNotFoundError(
                f"identity_init={init!r} holds no identity-pretrained anonymizer. Pretrain it with `anonvid train "
                f"--config configs/penalty.py:synthetic,identity --workdir {init}` (same data and anonymizer "
                f"widths), or leave identity_init empty to pretrain inside this run's workdir") from err


def _setting_config(cfg: ml_collections.ConfigDict, s: Mapping[str, Any], init: str) -> ml_collections.ConfigDict:
    pcfg = ml_collections.ConfigDict(cfg.penalty.to_dict())
    pcfg.budget.B, pcfg.budget.weight, pcfg.omega, pcfg.seed = s["B"], s["weight"], s["omega"], s["seed"]
    pcfg.anonymizer.init = init
    return pcfg


def privacy_images(split: Mapping[str, np.ndarray], seed: int) -> np.ndarray:
    """The privacy branch's training images: one random frame of every clip (synthetic benchmark), or the
    split's own `image` array (VISPR)."""
    if "image" in split:
        return np.asarray(split["image"])
    return identity.frames_of(np.asarray(split["video"]), 1, seed)


def as_clips(split: Mapping[str, np.ndarray]) -> dict:
    """An image split (`image` (N, H, W, 3), `privacy`) as one-frame clips for the protocol's attacker."""
    if "video" in split:
        return dict(split)
    return {"video": np.asarray(split["image"])[:, None], "privacy": np.asarray(split["privacy"])}


def pretrain_identity(cfg: ml_collections.ConfigDict, train: Mapping[str, np.ndarray],
                      val: Mapping[str, np.ndarray], workdir: str | None, progress: bool = True,
                      privacy: Mapping[str, Mapping[str, np.ndarray]] | None = None) -> dict:
    """Identity pretraining on frames of the action clips, plus the privacy images when they are separate data
    (VISPR): f_A sees both kinds of input in the minimax."""
    icfg = cfg.identity
    frames = identity.frames_of(np.asarray(train["video"]), int(icfg.frames_per_clip), int(icfg.seed))
    val_frames = identity.frames_of(np.asarray(val["video"]), 1, int(icfg.seed) + 1)
    if privacy is not None:
        frames = np.concatenate([frames, privacy_images(privacy["train"], seed=int(icfg.seed))])
        val_frames = np.concatenate([val_frames, privacy_images(privacy["val"], seed=int(icfg.seed) + 1)])
    return identity.train_identity(icfg, frames, val_frames, workdir=workdir, progress=progress)


def run(cfg: ml_collections.ConfigDict, *, train: Mapping[str, np.ndarray], val: Mapping[str, np.ndarray],
        test: Mapping[str, np.ndarray], num_classes: int, attribute_names: Sequence[str], workdir: str,
        privacy: Mapping[str, Mapping[str, np.ndarray]] | None = None, rows_dir: str | None = None,
        progress: bool = True) -> dict[str, Any]:
    """Runs the whole experiment (resumable from `workdir`).

    Args:
      cfg: `configs/penalty.py` config.
      train, val, test: action splits (`video`, `action`; `privacy` when the attacker uses the same clips).
      num_classes: action classes.
      attribute_names: the attacker's privacy attributes.
      workdir: the experiment folder.
      privacy: separate privacy data `{"train", "val", "test"}` (VISPR images); None uses frames of the action
        clips for f_B and the action clips' `privacy` labels for the attacker.
      rows_dir: where the protocol rows go (default `workdir/rows`); a folder that already holds a finished
        "raw" row of the same data and protocol (e.g. the demo's) reuses it.
      progress: progress bars.

    Returns:
      `{"identity", "raw", "rows", "summary", "table", "targets", "figures"}`.
    """
    check_config(cfg)
    init = str(cfg.identity_init)
    identity_result = None
    if not init:
        init = os.path.join(workdir, "identity")
        identity_result = pretrain_identity(cfg, train, val, init, progress, privacy)["final"]
    proto = ml_collections.ConfigDict({"action": cfg.action.to_dict(), "attacker": cfg.attacker.to_dict()})
    attacker_splits = {}
    if privacy is not None:
        attacker_splits = {"attacker_train": as_clips(privacy["train"]), "attacker_test": as_clips(privacy["test"])}
    rows_dir = rows_dir or os.path.join(workdir, "rows")
    common = dict(train=train, test=test, num_classes=num_classes, attribute_names=attribute_names,
                  workdir=rows_dir, progress=progress, **attacker_splits)
    raw = leakage.run(proto, leakage.identity, name="raw", **common)
    p_train = privacy_images(privacy["train"] if privacy else train, seed=1)
    p_val = privacy_images(privacy["val"] if privacy else val, seed=2)
    rows, anonymizers = [], {}
    for s in settings(cfg):
        pcfg = _setting_config(cfg, s, init)
        warm_dir = os.path.join(workdir, "warmup", f"seed{s['seed']}")
        if int(pcfg.warmup_epochs):
            adversarial.train_penalty(pcfg, train, p_train, val, p_val, num_classes=num_classes, workdir=warm_dir,
                                      progress=progress, desc=f"warm-up seed {s['seed']}", warmup_only=True)
        run_dir = os.path.join(workdir, "runs", f"{leakage._safe(s['name'])}_seed{s['seed']}")
        out = adversarial.train_penalty(pcfg, train, p_train, val, p_val, num_classes=num_classes, workdir=run_dir,
                                        progress=progress, desc=f"{s['name']} seed {s['seed']}",
                                        warm_start=warm_dir if int(pcfg.warmup_epochs) else None)
        model = out["anonymizer"]
        anonymizers.setdefault(s["name"], model)
        row = leakage.run(proto, jax.jit(lambda clips, m=model: apply_per_frame(m, clips)),
                          name=f"{s['name']} seed {s['seed']}", **common)
        last = out["history"][-1]
        rows.append({**s, "setting": s["name"], **{k: row[k] for k in ("name", *METRICS, "top1_best", "cmap_epoch")},
                     "selection": out["selection"], "val_distance": _selected(out)["val_distance"],
                     "final_val_top1": last["val_top1"]})
        _write_json(os.path.join(workdir, "rows.json"), {"raw": _short(raw), "rows": rows})
    summary = summarize(rows)
    figures = [*_budget_plot(summary, raw, os.path.join(workdir, "budget.png")),
               *_frames_figure(anonymizers, test, cfg.pictures.clips, os.path.join(workdir, "frames.png"))]
    result = {"identity": identity_result, "raw": _short(raw), "rows": rows, "summary": summary,
              "table": markdown_table(raw, summary), "targets": targets(raw, summary),
              "figures": [os.path.basename(f) for f in figures]}
    return result


def _selected(out: Mapping[str, Any]) -> Mapping[str, Any]:
    step = out["selection"]["step"]
    return next(r for r in out["history"] if r["step"] == step)


def _short(row: Mapping[str, Any]) -> dict:
    return {k: row[k] for k in ("name", *METRICS, "top1_best", "cmap_epoch", "f1_epoch") if k in row}


def summarize(rows: Sequence[Mapping[str, Any]]) -> list[dict]:
    """Mean ± sample std (ddof 1; 0 for one seed) of top-1, cMAP and F1 per setting, over its seeds."""
    groups: dict[tuple, list] = {}
    for r in rows:
        groups.setdefault((r["B"], r["weight"], r["omega"]), []).append(r)
    out = []
    for group in groups.values():
        entry = {"setting": group[0]["setting"], "B": group[0]["B"], "weight": group[0]["weight"],
                 "omega": group[0]["omega"], "seeds": [g["seed"] for g in group]}
        for m in METRICS:
            values = np.array([g[m] for g in group], float)
            entry[m] = float(values.mean())
            entry[f"{m}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        out.append(entry)
    return sorted(out, key=lambda e: (e["weight"], e["omega"], e["B"]))


def targets(raw: Mapping[str, Any], summary: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Issue 5's synthetic targets: B=0.3 within 5 top-1 points of raw with cMAP ≥ 15 points lower; top-1
    falling with B while leakage stays about flat (the paper's finding); the seed std."""
    out: dict[str, Any] = {}
    for e in summary:
        if abs(e["B"] - 0.3) < 1e-9:
            drop, cdrop = 100 * (raw["top1"] - e["top1"]), raw["cmap"] - e["cmap"]
            out[e["setting"]] = {"top1_drop_points": round(drop, 2), "top1_within_5_of_raw": bool(drop <= 5.0),
                                 "cmap_drop_points": round(cdrop, 2), "cmap_at_least_15_below_raw": bool(cdrop >= 15),
                                 "seeds": len(e["seeds"]), "top1_std_points": round(100 * e["top1_std"], 2),
                                 "cmap_std_points": round(e["cmap_std"], 2)}
    by_lw: dict[tuple, list] = {}
    for e in summary:
        by_lw.setdefault((e["weight"], e["omega"]), []).append(e)
    for (lam, om), group in by_lw.items():
        if len(group) < 2:
            continue
        b = np.array([e["B"] for e in group])
        top1 = 100 * np.array([e["top1"] for e in group])
        cmap = np.array([e["cmap"] for e in group])
        out[f"trend λ={lam:g} ω={om:g}"] = {
            "top1_slope_points_per_unit_B": round(float(np.polyfit(b, top1, 1)[0]), 2),
            "cmap_slope_points_per_unit_B": round(float(np.polyfit(b, cmap, 1)[0]), 2),
            "top1_range_points": round(float(top1.max() - top1.min()), 2),
            "cmap_range_points": round(float(cmap.max() - cmap.min()), 2),
            "top1_falls_with_B": bool(np.polyfit(b, top1, 1)[0] < 0),
        }
    return out


def markdown_table(raw: Mapping[str, Any], summary: Sequence[Mapping[str, Any]]) -> str:
    """Raw, then one line per setting: mean ± std over its seeds (n seeds)."""
    lines = ["| anonymizer | seeds | action top-1 ↑ | privacy cMAP (%) ↓ | privacy F1 ↓ |", "|---|---:|---:|---:|---:|",
             f"| raw | — | {100 * raw['top1']:.2f} | {raw['cmap']:.2f} | {raw['f1']:.3f} |"]
    for e in summary:
        lines.append(f"| {e['setting']} | {len(e['seeds'])} | {100 * e['top1']:.2f} ± {100 * e['top1_std']:.2f} | "
                     f"{e['cmap']:.2f} ± {e['cmap_std']:.2f} | {e['f1']:.3f} ± {e['f1_std']:.3f} |")
    return "\n".join(lines)


def _budget_plot(summary: Sequence[Mapping[str, Any]], raw: Mapping[str, Any], path: str) -> list[str]:
    """Action top-1 and attacker cMAP (mean ± std over seeds) against B, with the raw values as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not summary:
        return []
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
    groups: dict[tuple, list] = {}
    for e in summary:
        groups.setdefault((e["weight"], e["omega"]), []).append(e)
    for ax, metric, scale, label, raw_value in (
            (axes[0], "top1", 100, "action top-1 (%) ↑", 100 * raw["top1"]),
            (axes[1], "cmap", 1, "attacker cMAP (%) ↓", raw["cmap"])):
        for (lam, om), group in groups.items():
            group = sorted(group, key=lambda e: e["B"])
            ax.errorbar([e["B"] for e in group], [scale * e[metric] for e in group],
                        yerr=[scale * e[f"{metric}_std"] for e in group], marker="o", capsize=3,
                        label=f"λ={lam:g} ω={om:g}")
        ax.axhline(raw_value, color="grey", linestyle="--", label="raw")
        ax.set_xlabel("budget B (pixel RMS)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    seeds = max(len(e["seeds"]) for e in summary)
    fig.suptitle(f"penalty-driven anonymizer: mean ± std over up to {seeds} seed(s)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return [path]


def _frames_figure(anonymizers: Mapping[str, Any], test: Mapping[str, np.ndarray], clips: Sequence[int],
                   path: str) -> list[str]:
    """Rows: raw, then each setting's selected f_A (first seed); columns: the middle frame of `clips`."""
    from PIL import Image

    from anonvid.pruning_figures import compose_frames

    if not anonymizers or not len(clips):
        return []
    video = np.asarray(test["video"])[list(clips)]
    mid = video.shape[1] // 2
    raw = video[:, mid:mid + 1]  # (clips, 1, H, W, 3)
    rows = [[c for c in raw]]
    for model in anonymizers.values():
        out = np.asarray(model(jax.numpy.asarray(raw[:, 0], "float32") / 255.0))
        rows.append([np.round(o * 255).astype(np.uint8)[None] for o in out])
    frames = compose_frames(rows, gap=2)
    Image.fromarray(frames[0]).save(path)
    with open(os.path.splitext(path)[0] + ".txt", "w", encoding="utf-8") as f:
        f.write("rows, top to bottom: raw, " + ", ".join(anonymizers) + f"; columns: test clips {list(clips)}, "
                f"frame {mid}\n")
    return [path]


def results_markdown(result: Mapping[str, Any]) -> str:
    """The experiment's `results.md`."""
    lines = ["# Penalty-driven anonymizer (METHODS.md C)", "", result["table"], "",
             "## Targets", "", "```json", json.dumps(result["targets"], indent=1, ensure_ascii=False), "```", "",
             "## Checkpoint selection per run", ""]
    for r in result["rows"]:
        lines.append(f"- **{r['name']}**: {r['selection']['reason']}")
    if result.get("identity"):
        ident = result["identity"]
        lines += ["", f"Identity pretraining: validation L1 {ident['l1']:.4f}, PSNR {ident['psnr']:.2f} dB."]
    lines += ["", "Figures: " + ", ".join(result["figures"])]
    return "\n".join(lines) + "\n"
