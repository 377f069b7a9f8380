"""`anonvid demo`: the synthetic end-to-end run that `make demo` starts.

Stages 1–3: the raw-video reference of the fresh-attacker protocol on the built-in synthetic benchmark — a fresh
R3D action model and a fresh per-frame ResNet attacker trained on raw clips, reported as action top-1, privacy
cMAP and macro-F1 — and the single-frame control that shows the benchmark's action is in the motion: the same
kind of per-frame 2-D network, given one frame per clip, stays near chance.

Stage 4 (method B, data minimization): the temporal-sampling row and the diagonal of the paper's grid
(`configs/minimization.py:synthetic,demo`), each configuration scored by a fresh anomaly-detection autoencoder
(frame AUC) and a fresh adaptive attacker (cMAP, F1), then ranked and Pareto-analysed: the report names the
sweet spot and the Pareto set and shows the heat maps.

Stage 5 (method A, tubelet pruning): the adversarial dual-token pruner and random pruning at the same kept count
(`configs/pruning.py:synthetic,demo`). Stage 6 (method C, penalty-driven anonymizer): identity pretraining and
a short minimax at B = 0.3 (`configs/penalty.py:synthetic,demo`). Both reuse the raw row of stage 2.

Writes `report.json`, `report.md`, training-curve plots and a picture of sample clips to the output folder.
Each stage prints one progress line; the run is resumable (a stage whose results exist is read back).
"""
from __future__ import annotations

import json
import os
import shutil
import time
from typing import Any

import numpy as np

from anonvid import config_defaults as D
from anonvid import experiments
from anonvid.data import datasets, synthetic
from anonvid.protocols import leakage
from anonvid.trainers import classifier


def _log(msg: str) -> None:
    print(f"[anonvid demo] {msg}", flush=True)


def demo_config(smoke: bool = False):
    """The demo's budget: what a 2-core CPU finishes in a few minutes."""
    import ml_collections

    cfg = ml_collections.ConfigDict()
    cfg.data = D.synthetic_actions(smoke=smoke)
    cfg.action = D.action_model(smoke=smoke, epochs=10)
    cfg.attacker = D.privacy_attacker(smoke=smoke, epochs=16)
    # the per-frame network of the attacker, trained on the action label from one frame per clip
    cfg.frame_control = D.privacy_attacker(smoke=smoke, epochs=4)
    return cfg


def single_frame_split(data: dict, rng: np.random.Generator) -> dict:
    """One randomly chosen frame per clip, kept as a 1-frame clip."""
    video = data["video"]
    idx = rng.integers(0, video.shape[1], size=len(video))
    return dict(data, video=video[np.arange(len(video)), idx][:, None])


def _sample_picture(data: dict, path: str, clips: int = 6, frames: int = 6) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    video = data["video"][:clips]
    t_idx = np.linspace(0, video.shape[1] - 1, frames).astype(int)
    fig, axes = plt.subplots(len(video), frames, figsize=(1.3 * frames, 1.4 * len(video)))
    for i in range(len(video)):
        attrs = [a for a, on in zip(synthetic.PRIVACY_ATTRIBUTES, data["privacy"][i]) if on]
        for j, t in enumerate(t_idx):
            ax = axes[i, j]
            ax.imshow(video[i, t], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(synthetic.ACTIONS[data["action"][i]], fontsize=7)
            if i == 0:
                ax.set_title(f"t={t}", fontsize=7)
        axes[i, -1].text(1.05, 0.5, "\n".join(attrs) or "(none)", transform=axes[i, -1].transAxes,
                         fontsize=6, va="center")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _copy_curves(work: str, out: str, name: str) -> str | None:
    src = os.path.join(work, "curves.png")
    if not os.path.exists(src):
        return None
    dst = os.path.join(out, f"curves_{name}.png")
    shutil.copyfile(src, dst)
    return os.path.basename(dst)


def run(out: str, *, smoke: bool = False, progress: bool = True) -> dict[str, Any]:
    """Runs the demo into `out` and returns the report dict (also written as report.json / report.md)."""
    start = time.time()
    os.makedirs(out, exist_ok=True)
    work = os.path.join(out, "work")
    cfg = demo_config(smoke)
    name = cfg.data.name
    _log(f"stage 1/6: generating the synthetic benchmark ({cfg.data.train_size} train / {cfg.data.test_size} "
         f"test clips of {cfg.data.num_frames}x{cfg.data.height}x{cfg.data.width})")
    train = datasets.load_split(cfg.data, "train")
    test = datasets.load_split(cfg.data, "test")
    pictures = {"samples": os.path.basename(_sample_picture(test, os.path.join(out, "samples.png")))}

    _log("stage 2/6: raw-video reference (fresh action model + fresh attacker on raw clips)")
    raw = leakage.run(cfg, leakage.identity, name="raw", train=train, test=test,
                      num_classes=datasets.NUM_CLASSES[name], attribute_names=datasets.ATTRIBUTES[name],
                      workdir=work, progress=progress)
    for part in ("action", "attacker"):
        pictures[f"curves_raw_{part}"] = _copy_curves(os.path.join(work, "raw", part), out, f"raw_{part}")
    _log(f"  raw: top-1 {raw['top1']:.3f}, cMAP {raw['cmap']:.2f}, F1 {raw['f1']:.3f}")

    _log("stage 3/6: single-frame control (one frame per clip -> action)")
    rng = np.random.default_rng(int(cfg.data.seed))
    frame_dir = os.path.join(work, "single_frame")
    frame = classifier.train_classifier(
        cfg.frame_control, single_frame_split(train, rng), single_frame_split(test, rng), task="action",
        num_outputs=datasets.NUM_CLASSES[name], workdir=frame_dir, progress=progress,
        desc="single-frame action model")
    pictures["curves_single_frame"] = _copy_curves(frame_dir, out, "single_frame")
    chance = 1.0 / datasets.NUM_CLASSES[name]
    _log(f"  single frame: top-1 {frame['final']['top1']:.3f} (chance {chance:.3f})")

    _log("stage 4/6: data-minimization grid (TS row + diagonal): VAD frame AUC vs adaptive attacker")
    from configs import minimization

    grid_cfg = minimization.get_config("synthetic,demo" + (",smoke" if smoke else ""))
    grid_out = experiments.run_minimization(grid_cfg, os.path.join(work, "minimization"), progress=progress)
    summary = grid_out["summary"]
    for fig in summary.get("figures", []):
        if fig == "heatmaps.png" or fig.startswith("pareto_auc_cmap"):
            shutil.copyfile(os.path.join(work, "minimization", "tradeoff", fig),
                            os.path.join(out, f"minimization_{fig}"))
            pictures[f"minimization_{fig[:-4]}"] = f"minimization_{fig}"
    _log(f"  sweet spot: {summary['sweet_spot']}; Pareto set: {', '.join(summary['pareto'])}")

    _log("stage 5/6: tubelet pruning (method A): train the dual-token ViT, then fresh models on its output")
    from anonvid.protocols import pruning_table
    from configs import pruning as pruning_config

    pcfg = pruning_config.get_config("synthetic,demo" + (",smoke" if smoke else ""))
    # The raw row is this demo's own (same benchmark, action model and attacker): reused, not retrained.
    pruned = pruning_table.run(pcfg, train=train, test=test, num_classes=datasets.NUM_CLASSES[name],
                               attribute_names=datasets.ATTRIBUTES[name], workdir=os.path.join(work, "pruning"),
                               rows_dir=work, progress=progress)
    for fig in pruned["figures"]:
        shutil.copyfile(os.path.join(work, "pruning", fig), os.path.join(out, fig))
        pictures[fig.replace(".", "_")] = fig
    for r in pruned["rows"][1:]:
        _log(f"  {r['name']}: top-1 {r['top1']:.3f}, cMAP {r['cmap']:.2f}, F1 {r['f1']:.3f}")

    _log("stage 6/6: penalty-driven anonymizer (method C): identity pretraining, minimax at B=0.3, fresh models")
    from anonvid.protocols import penalty_table
    from configs import penalty as penalty_config

    ccfg = penalty_config.get_config("synthetic,demo" + (",smoke" if smoke else ""))
    val = datasets.load_split(dict(cfg.data, val_size=ccfg.data.val_size), "val")
    penalized = penalty_table.run(ccfg, train=train, val=val, test=test, num_classes=datasets.NUM_CLASSES[name],
                                  attribute_names=datasets.ATTRIBUTES[name], workdir=os.path.join(work, "penalty"),
                                  rows_dir=work, progress=progress)
    for fig in penalized["figures"]:
        shutil.copyfile(os.path.join(work, "penalty", fig), os.path.join(out, f"penalty_{fig}"))
        pictures[f"penalty_{fig[:-4]}"] = f"penalty_{fig}"
    for r in penalized["rows"]:
        _log(f"  {r['name']}: top-1 {r['top1']:.3f}, cMAP {r['cmap']:.2f}, F1 {r['f1']:.3f}")

    report = {
        "benchmark": {k: cfg.data[k] for k in cfg.data.keys()},
        "smoke": smoke,
        "raw_reference": {k: raw[k] for k in ("top1", "top1_best", "cmap", "f1", "cmap_epoch", "f1_epoch",
                                               "test_clips")},
        "single_frame_control": {"top1": frame["final"]["top1"], "top1_best": frame["best"]["top1"],
                                 "chance": chance},
        "models": {"action": cfg.action.model.to_dict(), "attacker": cfg.attacker.model.to_dict()},
        "epochs": {"action": cfg.action.epochs, "attacker": cfg.attacker.epochs,
                   "single_frame": cfg.frame_control.epochs},
        "minimization": {"sweet_spot": summary["sweet_spot"], "pareto": summary["pareto"],
                         "knee": summary["knee"], "hypervolume": summary["hypervolume"],
                         "rows": grid_out["rows"], "table": grid_out["table"],
                         "vad_data": grid_cfg.vad_data.to_dict(), "attack_data": grid_cfg.attack_data.to_dict()},
        "pruning": {k: pruned[k] for k in ("rows", "targets", "pruners", "table")} | {
            "pruner": {"model": pcfg.pruner.model.kwargs.to_dict(), "epochs": pcfg.pruner.epochs,
                       "modes": list(pcfg.modes)}},
        "penalty": {"rows": penalized["rows"], "targets": penalized["targets"],
                    "table": penalized["table"],
                    "identity": penalized["identity"],
                    "epochs": {"identity": ccfg.identity.epochs, "warmup": ccfg.penalty.warmup_epochs,
                               "minimax": ccfg.penalty.epochs},
                    "anonymizer": ccfg.penalty.anonymizer.model.kwargs.to_dict()},
        "pictures": {k: v for k, v in pictures.items() if v},
        "seconds": round(time.time() - start, 1),
    }
    with open(os.path.join(out, "report.json"), "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1, default=str)
    md = _markdown(report, raw)
    with open(os.path.join(out, "report.md"), "w", encoding="utf-8") as f:
        f.write(md)
    print(md, flush=True)
    _log(f"done in {report['seconds']:.0f} s; report: {os.path.join(out, 'report.md')}")
    return report


def _markdown(report: dict, raw: dict) -> str:
    b = report["benchmark"]
    sf = report["single_frame_control"]
    lines = [
        "# anonvid demo report",
        "",
        f"Synthetic benchmark: {b['train_size']} train / {b['test_size']} test clips, "
        f"{b['num_frames']}×{b['height']}×{b['width']}, seed {b['seed']}"
        + (" (SMOKE sizes: not a result)" if report["smoke"] else "") + ".",
        "",
        "## Fresh-attacker protocol",
        "",
        leakage.markdown_table([raw]),
        "",
        "Action top-1: last epoch. Leakage: the attacker's best epoch on the full test split (worst case).",
        "",
        "## Single-frame control",
        "",
        f"A per-frame action model given one frame per clip: top-1 {100 * sf['top1']:.2f} "
        f"(chance {100 * sf['chance']:.2f}): the action is in the motion, not in any single frame.",
        "",
        "## Data minimization (method B)",
        "",
        _minimization_text(report["minimization"], report["smoke"]),
        "",
        "## Tubelet pruning (method A)",
        "",
        _pruning_text(report["pruning"], report["smoke"]),
        "",
        "## Penalty-driven anonymizer (method C)",
        "",
        _penalty_text(report["penalty"], report["smoke"]),
        "",
        f"Total time: {report['seconds']:.0f} s.",
        "",
    ]
    return "\n".join(lines)


def _minimization_text(m: dict, smoke: bool) -> str:
    v, a = m["vad_data"], m["attack_data"]
    return "\n".join([
        f"Utility: a fresh ConvLSTM autoencoder per configuration on {v['train_size']} normal / {v['test_size']} "
        f"test surveillance videos of {v['num_frames']}×{v['height']}×{v['width']} (pooled frame AUC). Leakage: a "
        f"fresh per-frame ResNet attacker (features max-pooled over time) on {a['train_size']} / {a['test_size']} "
        f"clips of {a['num_frames']}×{a['height']}×{a['width']} (best-epoch cMAP, F1). The same minimization is "
        "applied to training and test input of both." + (" SMOKE sizes: not a result." if smoke else ""),
        "",
        m["table"],
        "",
        f"Sweet spot (Pareto-optimal, best combined rank): **{m['sweet_spot']}**. Pareto set: "
        f"{', '.join(m['pareto'])}. Knee: {m['knee']}. Hypervolume (normalised): {m['hypervolume']:.3f}.",
    ])


def _pruning_text(p: dict, smoke: bool) -> str:
    m = p["pruner"]["model"]
    lines = [f"A dual-token ViT (width {m['dim']}, depth {m['depth']}, {'×'.join(map(str, m['tubelet']))} tubelets, "
             f"keep {m['keep_rates']} at blocks {m['prune_blocks']}, λ_priv {m['lambda_priv']}) trained "
             f"{p['pruner']['epochs']} epochs per privacy-branch mode; its kept tubelets, the rest black, are the "
             f"anonymized video. Random pruning keeps as many tubelets, uniformly drawn. Rows after the raw one "
             f"train their own fresh action model and attacker." + (" SMOKE sizes: not a result." if smoke else ""),
             "", p["table"], ""]
    for name, t in p["targets"].items():
        lines.append(f"- {name}: top-1 −{t['top1_drop_points']:.2f} points, cMAP −{t['cmap_drop_points']:.2f} points, "
                     f"beats random pruning: {'yes' if t['beats_random_pruning'] else 'no'}, score AUROC "
                     f"{t['score_auroc'] if t['score_auroc'] is None else round(t['score_auroc'], 3)}.")
    return "\n".join(lines)


def _penalty_text(p: dict, smoke: bool) -> str:
    e = p["epochs"]
    lines = [f"A UNet++ anonymizer (widths {p['anonymizer']['widths']}) pretrained to the identity for "
             f"{e['identity']} epochs, then {e['warmup']} warm-up epochs of the action and privacy branches and "
             f"{e['minimax']} minimax epochs at budget B = 0.3 (pixel RMS); the checkpoint is chosen by the rule "
             f"(most private within 5 validation top-1 points of raw). Its output trains a fresh action model and "
             f"attacker." + (" SMOKE sizes: not a result." if smoke else ""), "", p["table"], ""]
    for r in p["rows"]:
        lines.append(f"- {r['name']}: {r['selection']['reason']}")
    return "\n".join(lines)
