"""The `anonvid` command line: help with examples, clear errors with exit status 2, and the `demo` wiring (the smoke
demo end to end, report.json, report.md and plots, is checked by tests/test_notebook.py, which runs it through the
Colab notebook)."""

import pytest

from anonvid import cli


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["demo", "--help"], ["eval", "--help"],
                                  ["anonymize", "--help"], ["minimize", "--help"], ["tradeoff", "--help"],
                                  ["data", "--help"], ["data", "prepare", "--help"]])
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


def test_demo_passes_its_options_to_demo_run(tmp_path, monkeypatch, capsys):
    """The CLI wiring only: the smoke demo itself runs end to end in tests/test_notebook.py (once per suite)."""
    from anonvid import demo

    calls = []
    monkeypatch.setattr(demo, "run", lambda out, **kwargs: calls.append((out, kwargs)) or {})
    out = str(tmp_path / "demo")
    assert cli.main(["demo", "--smoke", "--out", out, "--no-progress"]) == 0
    assert cli.main(["demo"]) == 0
    assert calls == [(out, {"smoke": True, "progress": False}), ("demo_out", {"smoke": False, "progress": True})]

    def fail(out, **kwargs):
        raise ValueError("bad demo input")

    monkeypatch.setattr(demo, "run", fail)
    assert cli.main(["demo", "--out", out]) == 2
    assert "anonvid demo: error: bad demo input" in capsys.readouterr().err
