"""Method A's experiment: the pruning table, the λ_priv × keep-rate sweep and its trade-off plot.

Every row goes through the fresh-attacker protocol (`anonvid.protocols.leakage`) with the same action-model
and attacker architectures:

- raw video; downsampling ×f (area average of f×f tiles, shown back at full size so that the same networks see
  it); strong blur (Gaussian, `baselines.blur_sigma` px); blackening of the actor through the ground-truth
  mask (synthetic benchmark only);
- random pruning: every clip keeps the same number of tubelets as the method, drawn uniformly;
- the method, one row per privacy-branch mode (`adversarial`, `cooperative`), each a pruner trained here;
- the sweep: one trained pruner (`sweep.mode`) anonymizing at every (λ_priv, keep rate) pair, keep rate applied
  at each pruning block. λ and keep rates are inference-time settings of the same trained weights.

`targets` in the results checks issue 3's targets mechanically (against the raw and random-pruning rows and
the score's AUROC); the numbers are whatever the run produced.
"""
from __future__ import annotations

import itertools
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import ml_collections
import numpy as np
from flax import nnx

from anonvid import minimize
from anonvid import prune_anonymizer as PA
from anonvid.protocols import leakage
from anonvid.trainers import dual_vit

RESULT_COLUMNS = ("name", "top1", "cmap", "f1", "kept_fraction", "score_auroc")


def _write_json(path: str, payload: Any) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=1, default=str)
    os.replace(tmp, path)


def _sweep_protocol(cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The protocol config of the sweep rows: the table's, with the sweep's epoch budget."""
    proto = ml_collections.ConfigDict({"action": cfg.action.to_dict(), "attacker": cfg.attacker.to_dict()})
    if int(cfg.sweep.action_epochs):
        proto.action.epochs = int(cfg.sweep.action_epochs)
    if int(cfg.sweep.attacker_epochs):
        proto.attacker.epochs = int(cfg.sweep.attacker_epochs)
    return proto


def train_pruners(cfg: ml_collections.ConfigDict, train: Mapping[str, np.ndarray], test: Mapping[str, np.ndarray], *,
                  num_classes: int, num_attributes: int, workdir: str | None,
                  progress: bool = True) -> dict[str, dict]:
    """Trains (or resumes) one pruner per mode in `cfg.modes` (and `cfg.sweep.mode`); {mode: {model, final}}."""
    modes = list(dict.fromkeys([*cfg.modes, *([cfg.sweep.mode] if cfg.sweep.lambdas else [])]))
    pruners = {}
    for mode in modes:
        pcfg = ml_collections.ConfigDict(cfg.pruner.to_dict())
        pcfg.privacy_mode = mode
        out = dual_vit.train_pruner(pcfg, train, test, num_classes=num_classes, num_attributes=num_attributes,
                                    workdir=os.path.join(workdir, f"pruner_{mode}") if workdir else None,
                                    progress=progress, desc=f"pruner ({mode})")
        state = out["state"]
        pruners[mode] = {"model": nnx.merge(out["fns"].eval_graph, state["params"], state["batch_stats"]),
                         "final": out["final"], "history": out["history"]}
    return pruners


def score_auroc(model: nnx.Module, test: Mapping[str, np.ndarray], *, lambda_priv: float,
                keep_rates: Sequence[float] | None = None, batch_size: int = 64) -> dict[str, float]:
    """`dual_vit.score_quality` of a trained pruner at an inference-time λ_priv and keep rates (test split)."""
    import jax

    @jax.jit
    def run(clips):
        _, aux = model(clips.astype("float32") / 255.0, keep_rates=keep_rates, lambda_priv=lambda_priv)
        return aux["scores"], aux["score_ids"], aux["kept_ids"]

    video = np.asarray(test["video"])
    parts = []
    for start in range(0, len(video), batch_size):
        chunk = video[start:start + batch_size]
        pad = batch_size - len(chunk)
        out = run(np.concatenate([chunk, np.repeat(chunk[:1], pad, 0)]) if pad else chunk)
        parts.append(jax.tree.map(lambda a, m=len(chunk): np.asarray(a)[:m], out))
    scores, ids, kept = (jax.tree.map(lambda *xs: np.concatenate(xs), *[p[i] for p in parts]) for i in range(3))
    return dual_vit.score_quality(scores, ids, np.asarray(test["privacy_mask"]), kept, model.config.tubelet)


def run(cfg: ml_collections.ConfigDict, *, train: Mapping[str, np.ndarray], test: Mapping[str, np.ndarray],
        num_classes: int, attribute_names: Sequence[str], workdir: str | None, progress: bool = True,
        rows_dir: str | None = None) -> dict[str, Any]:
    """Trains the pruners and runs every row of the table and the sweep (resumable from `workdir`).

    `rows_dir` (default `<workdir>/rows`) holds one folder per protocol row; pointing it at another run's rows
    reuses its finished rows (e.g. the demo's raw reference) instead of training them again.

    Returns:
      `{"rows": [...], "sweep": [...], "pruners": {mode: final eval}, "targets": {...}, "table": markdown,
      "sweep_table": markdown, "figures": [...]}`.
    """
    has_masks = "privacy_mask" in test
    pruners = train_pruners(cfg, train, test, num_classes=num_classes, num_attributes=len(attribute_names),
                            workdir=workdir, progress=progress)
    rows_dir = rows_dir or (os.path.join(workdir, "rows") if workdir else None)

    def protocol(name, anonymize=None, split_anonymizer=None, proto_cfg=cfg, **extra):
        row = leakage.run(proto_cfg, anonymize, name=name, train=train, test=test, num_classes=num_classes,
                          attribute_names=attribute_names, workdir=rows_dir, progress=progress,
                          split_anonymizer=split_anonymizer)
        return {**row, **extra}

    first = pruners[cfg.modes[0]]["model"]
    mcfg = first.config
    keep = PA.kept_tubelets(first)
    kept_fraction = keep / mcfg.num_tubelets
    # (priority, name, anonymizer, split anonymizer, extra columns), in the table's order. Rows run by priority
    # — raw, random pruning and the method first — so that a run cut short has the comparison that matters.
    specs = [(0, "raw", leakage.identity, None, {"kept_fraction": 1.0})]
    for f in cfg.baselines.downsample:
        specs.append((2, f"downsample x{f}", minimize.parse(f"pixelate({int(f)})").apply, None,
                      {"kept_fraction": 1.0}))
    if float(cfg.baselines.blur_sigma) > 0:
        sigma = float(cfg.baselines.blur_sigma)
        specs.append((2, f"strong blur (sigma {sigma:g} px)", lambda x: minimize.gaussian_blur(x, sigma), None,
                      {"kept_fraction": 1.0}))
    if cfg.baselines.actor_mask and cfg.baselines.actor_mask in train:
        actor = float(1.0 - np.mean(np.asarray(test[cfg.baselines.actor_mask]) != 0))
        specs.append((2, "actor blackening (ground-truth mask)", None, PA.mask_blackening(cfg.baselines.actor_mask),
                      {"kept_fraction": actor}))
    specs.append((1, f"random pruning ({keep}/{mcfg.num_tubelets} tubelets)", None,
                  PA.random_pruning(grid=mcfg.grid, tubelet=mcfg.tubelet, keep=keep, seed=int(cfg.pruner.seed)),
                  {"kept_fraction": kept_fraction}))
    for mode in cfg.modes:
        model = pruners[mode]["model"]
        extra = {"kept_fraction": kept_fraction, "mode": mode}
        if has_masks:
            extra.update(score_auroc(model, test, lambda_priv=model.config.lambda_priv))
        specs.append((1, f"pruning ({mode}, lambda {model.config.lambda_priv:g})",
                      PA.make_anonymizer(model, fill=cfg.fill), None, extra))
    done = {}
    for i in sorted(range(len(specs)), key=lambda i: specs[i][0]):
        _, name, anonymize, split_anonymizer, extra = specs[i]
        done[i] = protocol(name, anonymize, split_anonymizer, **extra)
    rows = [done[i] for i in range(len(specs))]

    # The sweep: the score's privacy metrics at every (λ_priv, keep rate) cost seconds; the fresh-attacker rows
    # cost minutes each and run only with `sweep.protocol`.
    sweep, sweep_scores = [], []
    if cfg.sweep.lambdas:
        model = pruners[cfg.sweep.mode]["model"]
        proto = _sweep_protocol(cfg)
        nblocks = len(model.config.prune_blocks)
        for lam, rate in itertools.product(cfg.sweep.lambdas, cfg.sweep.keep_rates):
            rates = (float(rate),) * nblocks
            extra = {"lambda_priv": float(lam), "keep_rate": float(rate), "mode": cfg.sweep.mode,
                     "kept_fraction": PA.kept_tubelets(model, rates) / model.config.num_tubelets}
            if has_masks:
                extra.update(score_auroc(model, test, lambda_priv=float(lam), keep_rates=rates))
            sweep_scores.append(extra)
        if cfg.sweep.protocol:
            for extra in sweep_scores:
                rates = (extra["keep_rate"],) * nblocks
                sweep.append(protocol(f"sweep {cfg.sweep.mode} lambda {extra['lambda_priv']:g} keep "
                                      f"{extra['keep_rate']:g}", PA.make_anonymizer(
                                          model, keep_rates=rates, lambda_priv=extra["lambda_priv"], fill=cfg.fill),
                                      proto_cfg=proto, **extra))
    figures = []
    if workdir:
        budget = (f"sweep: action {_sweep_protocol(cfg).action.epochs} / attacker "
                  f"{_sweep_protocol(cfg).attacker.epochs} epochs" if sweep else "")
        figures += _tradeoff_plot(rows, sweep, os.path.join(workdir, "tradeoff.png"), budget)
        figures += _pictures(cfg, pruners, test, workdir)
    if workdir and sweep_scores and has_masks:
        figures += _score_sweep_plot(sweep_scores, os.path.join(workdir, "score_sweep.png"))
    result = {"rows": [_short(r) for r in rows], "sweep": [_short(r) for r in sweep], "sweep_scores": sweep_scores,
              "pruners": {m: p["final"] for m, p in pruners.items()}, "targets": targets(rows),
              "figures": figures}
    result["table"] = markdown_table(result["rows"])
    result["sweep_table"] = markdown_table(result["sweep"]) if sweep else ""
    return result


def _short(row: Mapping[str, Any]) -> dict:
    keep = set(RESULT_COLUMNS) | {"top1_best", "cmap_epoch", "f1_epoch", "mode", "lambda_priv", "keep_rate",
                                  "privacy_kept", "other_kept", "test_clips", "prune_order_auroc"}
    return {k: v for k, v in row.items() if k in keep or k.startswith("score_auroc_stage")}


def targets(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Issue 3's synthetic targets for each method row, checked against the raw and random-pruning rows."""
    by = {r["name"]: r for r in rows}
    raw = by["raw"]
    rand = next(r for r in rows if r["name"].startswith("random pruning"))
    out = {}
    for r in rows:
        if not r["name"].startswith("pruning ("):
            continue
        out[r["name"]] = {
            "top1_drop_points": round(100 * (raw["top1"] - r["top1"]), 2),
            "top1_within_5_of_raw": bool(100 * (raw["top1"] - r["top1"]) <= 5.0),
            "cmap_drop_points": round(raw["cmap"] - r["cmap"], 2),
            "cmap_at_least_15_below_raw": bool(raw["cmap"] - r["cmap"] >= 15.0),
            "beats_random_pruning": bool(r["cmap"] < rand["cmap"] and r["top1"] >= rand["top1"]),
            "score_auroc": r.get("score_auroc"),
            "prune_order_auroc": r.get("prune_order_auroc"),
            "score_auroc_at_least_0.80": bool((r.get("score_auroc") or 0.0) >= 0.80),
        }
    return out


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """One line per row: top-1 ↑, cMAP ↓, F1 ↓, fraction of tubelets (or pixels) kept, the first-stage score's
    privacy AUROC, the prune-order AUROC and the fraction of privacy tubelets kept (method rows)."""
    lines = ["| anonymizer | action top-1 ↑ | privacy cMAP (%) ↓ | privacy F1 ↓ | kept | score AUROC | "
             "prune-order AUROC | privacy tubelets kept |", "|---|---:|---:|---:|---:|---:|---:|---:|"]

    def num(v):
        return f"{v:.3f}" if isinstance(v, float) and np.isfinite(v) else "—"

    for r in rows:
        lines.append(f"| {r['name']} | {100 * r['top1']:.2f} | {r['cmap']:.2f} | {r['f1']:.3f} | "
                     f"{r.get('kept_fraction', 1.0):.2f} | {num(r.get('score_auroc'))} | "
                     f"{num(r.get('prune_order_auroc'))} | {num(r.get('privacy_kept'))} |")
    return "\n".join(lines)


def _tradeoff_plot(rows, sweep, path: str, sweep_budget: str = "") -> list[str]:
    """Action top-1 (↑) against attacker cMAP (↓): the table's rows as labelled points, the sweep as lines
    (its rows may have a shorter protocol budget, named in the title)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5.5))
    for r in rows:
        ax.scatter(r["cmap"], 100 * r["top1"], marker="s" if r["name"].startswith("pruning") else "o", zorder=3)
        ax.annotate(r["name"], (r["cmap"], 100 * r["top1"]), fontsize=7, xytext=(4, 3), textcoords="offset points")
    lambdas = sorted({s["lambda_priv"] for s in sweep})
    for lam in lambdas:
        pts = sorted((s for s in sweep if s["lambda_priv"] == lam), key=lambda s: -s["keep_rate"])
        ax.plot([p["cmap"] for p in pts], [100 * p["top1"] for p in pts], "-^", label=f"λ_priv {lam:g}", alpha=0.8)
        for p in pts:
            ax.annotate(f"{p['keep_rate']:g}", (p["cmap"], 100 * p["top1"]), fontsize=6, xytext=(2, -8),
                        textcoords="offset points")
    ax.set_xlabel("attacker cMAP (%) ↓")
    ax.set_ylabel("action top-1 (%) ↑")
    title = "privacy-utility trade-off"
    if sweep:
        title += f"\nsweep (triangles, labelled by keep rate per pruning block; {sweep_budget})"
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    if lambdas:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return [os.path.basename(path)]


def _score_sweep_plot(points, path: str) -> list[str]:
    """Fraction of privacy tubelets kept against fraction of all tubelets kept, one line per λ_priv; the
    diagonal is what random pruning does."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    ax.plot([0, 1], [0, 1], "k:", label="random pruning")
    for lam in sorted({p["lambda_priv"] for p in points}):
        pts = sorted((p for p in points if p["lambda_priv"] == lam), key=lambda p: p["kept_fraction"])
        ax.plot([p["kept_fraction"] for p in pts], [p["privacy_kept"] for p in pts], "-o", label=f"λ_priv {lam:g}")
    ax.set_xlabel("tubelets kept")
    ax.set_ylabel("privacy tubelets kept ↓")
    ax.set_title("λ_priv × keep rate: where the pruning falls", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return [os.path.basename(path)]


def _pictures(cfg, pruners, test, workdir: str) -> list[str]:
    """A clip, its first-stage scores as a heat map and its anonymized version: PNG + GIF per mode."""
    import jax
    import jax.numpy as jnp

    from anonvid import pruning_figures as PF

    out = []
    index = int(cfg.pictures.clip)
    clip = np.asarray(test["video"][index:index + 1])
    for mode, p in pruners.items():
        model = p["model"]
        anon, aux = jax.jit(lambda c, m=model: PA.prune_clips(m, c, fill=cfg.fill))(jnp.asarray(clip, jnp.float32)
                                                                                   / 255.0)
        grid = PF.tubelet_score_grid(np.asarray(aux["scores"][0][0]), np.asarray(aux["score_ids"][0][0]), model.grid)
        anon = np.asarray(anon[0])
        base = os.path.join(workdir, f"pruning_{mode}")
        PF.pruning_figure(clip[0], grid, anon, base + ".png", tubelet=model.config.tubelet,
                          title=f"pruning ({mode}): clip, first-stage score, anonymized")
        PF.write_animation(PF.animation_rows(clip[0], grid, anon, tubelet=model.config.tubelet), base + ".gif")
        out += [os.path.basename(base) + ".png", os.path.basename(base) + ".gif"]
    return out


def results_markdown(result: Mapping[str, Any]) -> str:
    """`results.md`: the table, the targets, the pruners' own metrics, the sweep and the figures."""
    def num(v):
        return "n/a" if v is None else f"{v:.3f}"

    parts = ["# Tubelet pruning: fresh-attacker results", "", result["table"], "", "## Targets (issue 3)", ""]
    for name, t in result["targets"].items():
        parts.append(f"- **{name}**: top-1 drop {t['top1_drop_points']:.2f} points (≤ 5: "
                     f"{'met' if t['top1_within_5_of_raw'] else 'NOT met'}); cMAP drop {t['cmap_drop_points']:.2f} "
                     f"points (≥ 15: {'met' if t['cmap_at_least_15_below_raw'] else 'NOT met'}); better than random "
                     f"pruning: {'yes' if t['beats_random_pruning'] else 'NO'}; score AUROC "
                     f"{num(t['score_auroc'])} (≥ 0.80: "
                     f"{'met' if t['score_auroc_at_least_0.80'] else 'NOT met'}); prune-order AUROC "
                     f"{num(t['prune_order_auroc'])}")
    parts += ["", "## The pruners on their own test split (last epoch)", "",
              "| mode | action top-1 | privacy-head cMAP | score AUROC | prune-order AUROC | privacy tubelets kept | "
              "others kept |", "|---|---:|---:|---:|---:|---:|---:|"]
    nan = float("nan")
    for mode, f in result["pruners"].items():
        parts.append(f"| {mode} | {100 * f['top1']:.2f} | {f['privacy_cmap']:.2f} | {f.get('score_auroc', nan):.3f} | "
                     f"{f.get('prune_order_auroc', nan):.3f} | {f.get('privacy_kept', nan):.3f} | "
                     f"{f.get('other_kept', nan):.3f} |")
    if result.get("sweep_scores"):
        parts += ["", "## λ_priv × keep-rate sweep: where the pruning falls (test split, no protocol)", "",
                  "| λ_priv | keep per block | tubelets kept | score AUROC | prune-order AUROC | privacy tubelets "
                  "kept | other tubelets kept |", "|---:|---:|---:|---:|---:|---:|---:|"]
        for p in result["sweep_scores"]:
            parts.append(f"| {p['lambda_priv']:g} | {p['keep_rate']:g} | {p['kept_fraction']:.3f} | "
                         f"{p.get('score_auroc', float('nan')):.3f} | {p.get('prune_order_auroc', float('nan')):.3f} | "
                         f"{p.get('privacy_kept', float('nan')):.3f} | {p.get('other_kept', float('nan')):.3f} |")
    if result.get("sweep_table"):
        parts += ["", "## λ_priv × keep-rate sweep: fresh-attacker rows (shorter protocol budget)", "",
                  result["sweep_table"]]
    if result.get("figures"):
        parts += ["", "## Figures", ""] + [f"![{f}]({f})" for f in result["figures"] if f.endswith(".png")]
    return "\n".join(parts) + "\n"
