"""`anonvid tradeoff` on a hand-worked table: outputs, values and bad input."""
import csv
import json

import pytest

from anonvid import cli

TABLE = """name,auc,cmap,f1
a,0.90,80,0.70
b,0.85,60,0.50
c,0.60,50,0.40
d,0.80,65,0.55
e,0.50,55,0.45
"""
OBJECTIVES = ["--objective", "auc:max", "--objective", "cmap:min", "--objective", "f1:min"]


def test_hand_worked_table(tmp_path, capsys):
    table = tmp_path / "grid.csv"
    table.write_text(TABLE)
    out = tmp_path / "out"
    assert cli.main(["tradeoff", str(table), *OBJECTIVES, "--weights", "0.5,0.25,0.25", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    # d is dominated by b, e by c (worked by hand); b has the best combined rank (1 by both methods).
    assert sorted(summary["pareto"]) == ["a", "b", "c"]
    assert summary["sweet_spot"] == "b"
    with open(out / "tradeoff.csv") as f:
        rows = {r["name"]: r for r in csv.DictReader(f)}
    assert float(rows["b"]["distance"]) == pytest.approx(0.48770, abs=1e-4)
    assert float(rows["b"]["weighted"]) == pytest.approx(0.77083, abs=1e-4)
    assert float(rows["c"]["rank_distance"]) == float(rows["d"]["rank_distance"]) == 2.5  # a tie (0.75 each)
    assert float(rows["a"]["combined_rank"]) == pytest.approx(4.5)
    assert rows["d"]["pareto"] == "false" and rows["a"]["pareto"] == "true"
    assert any(p.startswith("pareto_auc_cmap") for p in (x.name for x in out.iterdir()))
    assert '"sweet_spot": "b"' in capsys.readouterr().out


@pytest.mark.parametrize("extra,message", [
    (["--objective", "auc:maximise"], "auc:maximise"),
    (["--objective", "acc:max"], "no column 'acc'"),
    (["--objective", "auc:max", "--weights", "1,2"], "2 values for 1 objectives"),
    (["--objective", "auc:max", "--name-column", "config"], "no name column 'config'"),
])
def test_bad_input_exits_2(tmp_path, capsys, extra, message):
    table = tmp_path / "grid.csv"
    table.write_text(TABLE)
    assert cli.main(["tradeoff", str(table), *extra, "--out", str(tmp_path / "o")]) == 2
    assert message in capsys.readouterr().err


def test_grid_names_give_heatmaps(tmp_path):
    from anonvid import tradeoff_report

    table = tmp_path / "grid.csv"
    table.write_text("name,cells,auc,cmap\nTS,,0.9,80\nBL,,0.8,50\nTS+BL,TS+BL BL+TS,0.85,55\n")
    out = tmp_path / "out"
    summary = tradeoff_report.run(str(table), ["auc:max", "cmap:min"], str(out))
    assert "heatmaps.png" in summary["figures"] and (out / "heatmaps.png").stat().st_size > 0
    labels, where = tradeoff_report.grid_layout([["TS"], ["BL"], ["TS+BL", "BL+TS"]])
    assert labels == ["TS", "BL"] and where == {(0, 0): 0, (1, 1): 1, (0, 1): 2, (1, 0): 2}
    assert tradeoff_report.grid_layout([["a"], ["b"]]) is None  # a list of names, not a grid
    assert tradeoff_report.grid_layout([["a+b+c"]]) is None
    assert tradeoff_report.grid_layout([["a"]]) is None
