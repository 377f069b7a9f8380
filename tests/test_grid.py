"""The minimization grid: cells and their de-duplication, bad input, and a resumable end-to-end smoke run."""
import csv
import json

import numpy as np
import pytest

from anonvid import experiments, minimize
from anonvid.protocols import grid
from configs import minimization

PAPER = ["TS=ts(5)", "DS=ds(2)", "MK=mask(25)", "BL=blur(4)", "BR=bgsub(warmup=20)"]


def test_pair_grid_covers_every_cell_once():
    configs = grid.pair_grid(grid.parse_mechanisms(PAPER))
    cells = [c for conf in configs for c in conf.cells]
    labels = ["TS", "DS", "MK", "BL", "BR"]
    expected = {a if a == b else f"{a}+{b}" for a in labels for b in labels}
    assert sorted(cells) == sorted(expected) and len(cells) == 25
    # TS commutes with the per-frame ops (3 merged pairs); background removal does not: 25 - 3 = 22 runs.
    assert len(configs) == 22
    merged = {c.name: c.cells for c in configs if len(c.cells) == 2}
    assert merged == {"TS+DS": ("TS+DS", "DS+TS"), "TS+MK": ("TS+MK", "MK+TS"), "TS+BL": ("TS+BL", "BL+TS")}
    specs = {c.name: c.spec for c in configs}
    assert specs["BL+DS"] == "blur(4)|ds(2)" and specs["BR+TS"] == "bgsub|ts(5)" and specs["TS+BR"] == "ts(5)|bgsub"


@pytest.mark.parametrize("items,message", [
    (["TS"], "LABEL=SPEC"),
    (["A+B=ts(2)"], "may not contain"),
    (["A=ts(2)", "A=blur(1)"], "given twice"),
    (["A=blurr(1)"], "blurr"),
    ([], "at least one"),
])
def test_bad_mechanisms(items, message):
    with pytest.raises(ValueError, match=message):
        grid.parse_mechanisms(items)


def test_spec_list_rejects_duplicates():
    assert [c.name for c in grid.spec_list(["ts(5)", "ts(5) | blur(1)"])] == ["ts(5)", "ts(5)|blur(1)"]
    with pytest.raises(ValueError, match="twice"):
        grid.spec_list(["blur(1)", "blur( 1 )"])


def test_config_needs_one_dataset():
    with pytest.raises(ValueError, match="exactly one"):
        minimization.get_config("smoke")


def test_smoke_run_is_resumable(tmp_path, monkeypatch):
    cfg = minimization.get_config("synthetic,smoke")
    cfg.grid.specs = ("ts(5)", "ts(5)|blur(1)")
    result = experiments.run_experiment(cfg, str(tmp_path), progress=False)
    rows = {r["name"]: r for r in result["rows"]}
    assert set(rows) == {"ts(5)", "ts(5)|blur(1)"}
    for r in rows.values():
        assert 0.0 <= r["auc"] <= 1.0 and 0.0 <= r["cmap"] <= 100.0 and 0.0 <= r["f1"] <= 1.0
        assert r["vad_shape"] == "12x32x32x3"  # 60 frames sampled every 5th
    with open(tmp_path / "results.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["name"] for r in table] == ["ts(5)", "ts(5)|blur(1)"]
    summary = json.loads((tmp_path / "tradeoff" / "summary.json").read_text())
    assert summary["sweet_spot"] in rows and set(summary["pareto"]) <= set(rows)
    assert (tmp_path / "results.md").read_text().count("|") > 10

    def fail(*a, **k):
        raise AssertionError("a finished configuration was trained again")

    monkeypatch.setattr(grid.vad, "train_vad", fail)
    monkeypatch.setattr(grid.classifier, "train_classifier", fail)
    again = experiments.run_experiment(cfg, str(tmp_path), progress=False)
    assert [r["auc"] for r in again["rows"]] == [r["auc"] for r in result["rows"]]


def test_only_selects_cells():
    cfg = minimization.get_config("synthetic,demo")
    names = [c.name for c in grid.configurations(cfg)]
    assert names == ["TS", "TS+DS", "TS+MK", "TS+BL", "TS+BR", "DS", "MK", "BL", "BR"]
    cfg.grid.only = ("TS", "XX+TS")
    with pytest.raises(ValueError, match="unknown cells"):
        grid.configurations(cfg)


def test_minimize_videos_of_different_lengths_one_at_a_time():
    """Real surveillance datasets (UCSD) have videos of different lengths: a list in, a list out, each video
    (and its labels, through temporal sampling) as if it were minimized alone."""
    rng = np.random.default_rng(0)
    videos = [rng.integers(0, 256, (n, 16, 16, 1), dtype=np.uint8) for n in (12, 9)]
    labels = [rng.integers(0, 2, n) for n in (12, 9)]
    pipe = minimize.parse("ts(3)|blur(1)")
    out, ys = grid.minimize_videos(pipe, videos, labels)
    for v, y, o, oy in zip(videos, labels, out, ys):
        alone, alone_y = grid.minimize_videos(pipe, v[None], y[None])
        np.testing.assert_array_equal(o, alone[0])
        np.testing.assert_array_equal(oy, alone_y[0])
    assert [len(o) for o in out] == [len(y) for y in ys] == [4, 3]
