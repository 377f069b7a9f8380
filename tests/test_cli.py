"""The `anonvid` command line: help with examples, clear errors with exit status 2, and the demo end to end
(smoke sizes) writing report.json, report.md and the training-curve plots."""
import json

import pytest

from anonvid import cli


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["demo", "--help"]])
def test_help_has_examples(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "usage: anonvid" in out
    if argv != ["--help"]:
        assert "examples:" in out


@pytest.mark.parametrize("argv,message", [
    (["train", "--config", "configs/leakage.py:synthetic,smok", "--workdir", "W"], "unknown config arg 'smok'"),
    (["train", "--config", "configs/leakage.py:smoke", "--workdir", "W", "--config.action.lr=1"],
     "unknown config field 'action.lr'"),
    (["train", "--config", "configs/missing.py", "--workdir", "W"], "does not exist"),
])
def test_bad_input_exits_2_with_a_message(argv, message, capsys, tmp_path):
    argv = [a if a != "W" else str(tmp_path / "w") for a in argv]
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "w" / "results.json").exists()


def test_demo_smoke_writes_report_and_plots(tmp_path, capsys):
    out = tmp_path / "demo"
    assert cli.main(["demo", "--smoke", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "| raw |" in printed and "stage 6/6" in printed
    report = json.loads((out / "report.json").read_text())
    raw = report["raw_reference"]
    assert 0.0 <= raw["top1"] <= 1.0 and 0.0 <= raw["cmap"] <= 100.0 and 0.0 <= raw["f1"] <= 1.0
    assert report["smoke"] is True
    assert "SMOKE" in (out / "report.md").read_text()
    for name in report["pictures"].values():
        assert (out / name).stat().st_size > 1000, name
    assert {"samples", "curves_raw_action", "curves_raw_attacker", "minimization_heatmaps"} <= set(report["pictures"])
    grid = report["minimization"]
    assert [r["name"] for r in grid["rows"]] == ["TS", "TS+BL"]
    assert grid["sweet_spot"] in ("TS", "TS+BL") and "Sweet spot" in (out / "report.md").read_text()
    pruned = report["pruning"]  # method A: the demo's raw row reused, then random pruning and the method
    assert [r["name"] for r in pruned["rows"]] == ["raw", "random pruning (208/256 tubelets)",
                                                   "pruning (adversarial, lambda 0.5)"]
    assert pruned["rows"][0]["cmap"] == raw["cmap"]
    assert {"pruning_adversarial_png", "pruning_adversarial_gif"} <= set(report["pictures"])
    assert "Tubelet pruning (method A)" in (out / "report.md").read_text()
    penalty = report["penalty"]  # method C: identity pretraining, a short minimax at B=0.3, fresh models
    assert [r["name"] for r in penalty["rows"]] == ["penalty B=0.3 λ=1 ω=1 seed 0"]
    reason = penalty["rows"][0]["selection"]["reason"]
    assert "within δ" in reason or "no minimax checkpoint reached" in reason
    assert {"penalty_frames", "penalty_budget"} <= set(report["pictures"])
    assert "Penalty-driven anonymizer (method C)" in (out / "report.md").read_text()
