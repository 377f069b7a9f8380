"""The Colab demo notebook `notebooks/anonvid_demo.ipynb`, executed end to end with nbclient at smoke size.

The notebook runs the whole smoke demo (`anonvid.demo.run`, all three methods), so this file also holds the demo's
end-to-end checks of report.json / report.md (`tests/test_cli.py` only checks the `anonvid demo` wiring): the suite
pays for one smoke demo, not two. The kernel is the `python3` kernel spec, which jupyter_client starts with the
interpreter running the tests (the venv's); it inherits the environment, so it shares the test run's XLA
compilation cache (`JAX_COMPILATION_CACHE_DIR`, set in conftest.py).
"""
import json
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "anonvid_demo.ipynb"
CELL_TIMEOUT_S = 1800  # the demo cell: ~1-8 min at smoke size on 2 cores, depending on the compilation cache


def _code_cell(nb, marker: str):
    cells = [c for c in nb.cells if c.cell_type == "code" and marker in c.source]
    assert len(cells) == 1, f"expected one code cell containing {marker!r}, found {len(cells)}"
    return cells[0]


def _images(cell) -> int:
    return sum("image/png" in o.get("data", {}) for o in cell.outputs)


def _stream(cell, name: str = "stdout") -> str:
    return "".join(o.text for o in cell.outputs if o.output_type == "stream" and o.name == name)


def test_notebook_is_stored_valid_and_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:80]
    params = _code_cell(nb, "SMOKE = False")
    assert "parameters" in params.metadata.get("tags", [])
    install = _code_cell(nb, "ANONVID_SOURCE =")
    assert "google.colab" in install.source and "<you>" in install.source  # a placeholder, not an invented URL


def test_notebook_runs_the_smoke_demo_and_shows_every_method(tmp_path, monkeypatch):
    monkeypatch.setenv("ANONVID_NOTEBOOK_SMOKE", "1")  # read by the notebook's parameters cell
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, kernel_name="python3", timeout=CELL_TIMEOUT_S,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()

    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    assert f"kernel Python: {sys.executable}" in _stream(_code_cell(nb, "ANONVID_SOURCE ="))
    assert "SMOKE=True" in _stream(_code_cell(nb, "SMOKE = False"))
    printed = _stream(_code_cell(nb, "demo.run("))
    assert "| raw |" in printed and "stage 6/6" in printed
    shown = [o for o in _code_cell(nb, "Markdown(f.read())").outputs if "text/markdown" in o.get("data", {})]
    assert len(shown) == 1 and "SMOKE" in shown[0]["data"]["text/markdown"]
    # raw vs anonymized strips of every method, the pruning score heat map and the trade-off plots
    assert _images(_code_cell(nb, "minimize.parse(")) >= 3  # strips, heat maps, Pareto projection
    assert _images(_code_cell(nb, "load_pruner(")) == 2  # clip / score heat map / pruned, then the strips
    assert _images(_code_cell(nb, "load_anonymizer(")) == 2  # strips, budget plot
    assert _images(_code_cell(nb, "utility vs leakage")) == 1
    video_cell = _code_cell(nb, "testclip.write(")  # the command line on a video file, both methods
    assert _images(video_cell) == 1
    printed_video = _stream(video_cell)
    assert "ts(3)|blur(2): 30 frames at 25 fps -> 10 frames at 25/3 fps" in printed_video
    assert "pruned: 30 frames at 25 fps -> 30 frames at 25 fps" in printed_video
    assert printed_video.count("audio: aac") == 2

    # The demo's report, as the CLI writes it (formerly test_cli.py's smoke demo test).
    out = tmp_path / "demo_out"
    assert (out / "notebook" / "pruning_clip0.png").stat().st_size > 1000
    report = json.loads((out / "report.json").read_text())
    md = (out / "report.md").read_text()
    raw = report["raw_reference"]
    assert 0.0 <= raw["top1"] <= 1.0 and 0.0 <= raw["cmap"] <= 100.0 and 0.0 <= raw["f1"] <= 1.0
    assert report["smoke"] is True
    assert "SMOKE" in md
    for name in report["pictures"].values():
        assert (out / name).stat().st_size > 1000, name
    assert {"samples", "curves_raw_action", "curves_raw_attacker", "minimization_heatmaps"} <= set(report["pictures"])
    grid = report["minimization"]
    assert [r["name"] for r in grid["rows"]] == ["TS", "TS+BL"]
    assert grid["sweet_spot"] in ("TS", "TS+BL") and "Sweet spot" in md
    pruned = report["pruning"]  # method A: the demo's raw row reused, then random pruning and the method
    assert [r["name"] for r in pruned["rows"]] == ["raw", "random pruning (208/256 tubelets)",
                                                   "pruning (adversarial, lambda 0.5)"]
    assert pruned["rows"][0]["cmap"] == raw["cmap"]
    assert {"pruning_adversarial_png", "pruning_adversarial_gif"} <= set(report["pictures"])
    assert "Tubelet pruning (method A)" in md
    penalty = report["penalty"]  # method C: identity pretraining, a short minimax at B=0.3, fresh models
    assert [r["name"] for r in penalty["rows"]] == ["penalty B=0.3 λ=1 ω=1 seed 0"]
    reason = penalty["rows"][0]["selection"]["reason"]
    assert "within δ" in reason or "no minimax checkpoint reached" in reason
    assert {"penalty_frames", "penalty_budget"} <= set(report["pictures"])
    assert "Penalty-driven anonymizer (method C)" in md
