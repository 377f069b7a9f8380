"""Method A's experiment end to end on the smoke benchmark: every row of the table, a sweep point, the targets,
the plot and the pictures; and the config's clear errors."""
import json
import os

import pytest

from anonvid import experiments
from anonvid.protocols import pruning_table
from configs import pruning


def test_config_needs_one_dataset():
    with pytest.raises(ValueError, match="exactly one dataset"):
        pruning.get_config("smoke")
    with pytest.raises(ValueError, match="exactly one dataset"):
        pruning.get_config("synthetic,vp_ucf101")
    with pytest.raises(ValueError, match="'demo' goes with 'synthetic'"):
        pruning.get_config("pa_hmdb51,demo")
    cfg = pruning.get_config("vp_ucf101")  # the paper's settings, for when the real-dataset builders land
    assert cfg.pruner.model.kwargs.variant == "base" and cfg.pruner.model.kwargs.prune_blocks == (3, 6, 9)
    assert cfg.pruner.optim.lr == 1e-4 and cfg.pruner.optim.weight_decay == 0.05 and cfg.pruner.epochs == 80


def test_bad_privacy_mode_fails_before_any_work(tmp_path):
    cfg = pruning.get_config("synthetic,smoke")
    cfg.pruner.privacy_mode = "friendly"
    with pytest.raises(ValueError, match="privacy_mode"):
        experiments.run_experiment(cfg, str(tmp_path), progress=False)


def test_smoke_experiment_writes_table_sweep_targets_and_pictures(tmp_path):
    cfg = pruning.get_config("synthetic,smoke")
    cfg.pruner.compiler_options = {"xla_backend_optimization_level": 0}  # compile time dominates a smoke run
    cfg.modes = ("cooperative",)  # the adversarial mode's step is covered by tests/test_pruner.py
    cfg.baselines.downsample = (2,)
    cfg.sweep.lambdas, cfg.sweep.keep_rates = (2.0,), (0.5,)
    result = experiments.run_experiment(cfg, str(tmp_path), progress=False)
    names = [r["name"] for r in result["rows"]]
    assert names[0] == "raw" and names[1] == "downsample x2" and names[2].startswith("strong blur")
    assert names[3].startswith("actor blackening") and names[4] == "random pruning (208/256 tubelets)"
    assert names[5] == "pruning (cooperative, lambda 0.5)"
    for r in result["rows"] + result["sweep"]:
        assert 0.0 <= r["top1"] <= 1.0 and 0.0 <= r["cmap"] <= 100.0 and 0.0 <= r["f1"] <= 1.0
    method = result["rows"][5]
    assert method["kept_fraction"] == pytest.approx(208 / 256) and 0.0 <= method["score_auroc"] <= 1.0
    (point,) = result["sweep"]
    assert point["lambda_priv"] == 2.0 and point["keep_rate"] == 0.5
    assert point["kept_fraction"] == pytest.approx(64 / 256)  # 256 → 128 → 64
    target = result["targets"]["pruning (cooperative, lambda 0.5)"]
    assert set(target) >= {"top1_within_5_of_raw", "cmap_at_least_15_below_raw", "beats_random_pruning",
                           "score_auroc_at_least_0.80"}
    for name in ("results.json", "results.md", "tradeoff.png", "pruning_cooperative.png", "pruning_cooperative.gif"):
        assert os.path.getsize(tmp_path / name) > 0, name
    md = (tmp_path / "results.md").read_text()
    assert "## Targets (issue 3)" in md and "λ_priv × keep-rate sweep" in md
    with open(tmp_path / "results.json") as f:
        assert json.load(f)["table"] == pruning_table.markdown_table(result["rows"])
    # resumable: a second run reads every finished row back instead of training again
    again = experiments.run_experiment(cfg, str(tmp_path), progress=False)
    assert [r["cmap"] for r in again["rows"]] == [r["cmap"] for r in result["rows"]]
