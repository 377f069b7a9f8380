"""Method A's experiment end to end on the smoke benchmark: every row of the table, a sweep point, the targets,
the plot and the pictures; and the config's clear errors."""
import json
import os

import numpy as np
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


def _fake_protocol(calls):
    """Stands in for `leakage.run` (trained for real in tests/test_leakage.py and the demo smoke test): it runs the
    row's anonymizer on both splits for real and scores the anonymized *test* split by cheap pixel statistics,
    so the rows differ exactly as their pixels do."""

    def run(cfg, anonymize, *, name, train, test, num_classes, attribute_names, workdir=None, progress=True,
            split_anonymizer=None):
        import jax
        import jax.numpy as jnp

        if split_anonymizer is not None:
            anon = split_anonymizer(test, "test")["video"]
            split_anonymizer(train, "train")
        else:
            anon = np.asarray(jax.jit(lambda v: jnp.round(anonymize(v / 255.0) * 255.0))(
                jnp.asarray(test["video"], jnp.float32)))
        calls[name] = anon
        visible = float(np.mean(anon > 0))
        return {"name": name, "top1": visible, "top1_best": visible, "cmap": 100.0 * float(np.mean(anon)) / 255.0,
                "f1": visible / 2, "cmap_epoch": 1, "f1_epoch": 1, "test_clips": len(anon)}

    return run


def test_experiment_builds_every_row_sweep_targets_and_pictures(tmp_path, monkeypatch):
    from anonvid.protocols import leakage

    calls = {}
    monkeypatch.setattr(leakage, "run", _fake_protocol(calls))
    cfg = pruning.get_config("synthetic,smoke")
    cfg.modes = ("cooperative",)  # the adversarial mode's step is covered by tests/test_pruner.py
    cfg.sweep.mode, cfg.sweep.lambdas, cfg.sweep.keep_rates = "cooperative", (2.0,), (0.5,)
    result = experiments.run_experiment(cfg, str(tmp_path), progress=False)
    names = [r["name"] for r in result["rows"]]
    assert names == ["raw", "downsample x2", "downsample x4", "strong blur (sigma 2 px)",
                     "actor blackening (ground-truth mask)", "random pruning (208/256 tubelets)",
                     "pruning (cooperative, lambda 0.5)"]
    raw = calls["raw"]
    for name in names[1:4]:  # downsampling and blur change pixels but black out nothing
        assert not np.array_equal(calls[name], raw) and calls[name].shape == raw.shape
    tubelet_black = lambda v: (v.reshape(16, 4, 2, 8, 4, 8, 4, 3) == 0).all(axis=(2, 4, 6, 7))  # noqa: E731
    # random pruning and the method black out exactly 48 of 256 tubelets per clip (the raw clips have no
    # black tubelet), the method's chosen by the trained model, random pruning's uniformly
    assert not tubelet_black(raw).any()
    for name in names[5:]:
        assert tubelet_black(calls[name]).sum(axis=(1, 2, 3)).tolist() == [48] * 16
    assert (calls[names[4]] == 0).all(axis=-1).mean() > 0.01  # the actor is blackened
    method = result["rows"][6]
    assert method["kept_fraction"] == pytest.approx(208 / 256) and 0.0 <= method["score_auroc"] <= 1.0
    assert 0.0 <= method["prune_order_auroc"] <= 1.0
    (point,) = result["sweep"]
    assert point["lambda_priv"] == 2.0 and point["keep_rate"] == 0.5
    (score_point,) = result["sweep_scores"]
    assert score_point["kept_fraction"] == 0.25 and 0.0 <= score_point["privacy_kept"] <= 1.0
    assert tubelet_black(calls[point["name"]]).sum(axis=(1, 2, 3)).tolist() == [256 - 64] * 16  # 256 → 128 → 64
    target = result["targets"]["pruning (cooperative, lambda 0.5)"]
    rand = result["rows"][5]
    assert target["beats_random_pruning"] == (method["cmap"] < rand["cmap"] and method["top1"] >= rand["top1"])
    assert target["top1_drop_points"] == pytest.approx(100 * (result["rows"][0]["top1"] - method["top1"]), abs=0.01)
    for name in ("results.json", "results.md", "tradeoff.png", "score_sweep.png", "pruning_cooperative.png",
                 "pruning_cooperative.gif"):
        assert os.path.getsize(tmp_path / name) > 0, name
    md = (tmp_path / "results.md").read_text()
    assert "## Targets (issue 3)" in md and "fresh-attacker rows (shorter protocol budget)" in md
    assert "where the pruning falls" in md
    with open(tmp_path / "results.json") as f:
        assert json.load(f)["table"] == pruning_table.markdown_table(result["rows"])
