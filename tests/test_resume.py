"""Checkpoint/resume end to end: a run killed with SIGKILL midway and resumed ends with exactly the parameters
of an uninterrupted run (same data order, optimizer state, step and RNG), through the `anonvid train` CLI."""
import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np

from anonvid.checkpointing import Checkpointer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARGS = ["--config", "configs/classifier.py:synthetic,smoke", "--no-progress", "--config.epochs=6",
        "--config.checkpoint_every_steps=1", "--config.keep_checkpoints=3"]


def _cmd(workdir):
    return [sys.executable, "-m", "anonvid.cli", "train", "--workdir", str(workdir), *ARGS]


def _final_params(workdir):
    ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), read_only=True)
    step = ckpt.latest_step()
    path = os.path.join(workdir, "checkpoints", str(step))
    # Restore without a model: read the arrays back as numpy through a host-only target.
    import orbax.checkpoint as ocp

    with ocp.PyTreeCheckpointer() as reader:
        tree = reader.restore(os.path.join(path, "state"))
    return step, jax.tree.map(np.asarray, tree["params"])


def test_sigkill_midway_then_resume_matches_uninterrupted(tmp_path, monkeypatch):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    straight = tmp_path / "straight"
    subprocess.run(_cmd(straight), cwd=ROOT, env=env, check=True, capture_output=True, timeout=600)

    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cmd(killed), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    ckpt_dir = killed / "checkpoints"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        steps = [int(p) for p in os.listdir(ckpt_dir) if p.isdigit()] if ckpt_dir.exists() else []
        if steps and max(steps) >= 5:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed; the test proves nothing"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "results.json").exists()

    resumed = subprocess.run(_cmd(killed), cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    step_a, params_a = _final_params(straight)
    step_b, params_b = _final_params(killed)
    assert step_a == step_b == 24  # 6 epochs × 32 clips / batch 8
    for a, b in zip(jax.tree.leaves(params_a), jax.tree.leaves(params_b)):
        np.testing.assert_array_equal(a, b)
    with open(straight / "results.json") as f, open(killed / "results.json") as g:
        assert json.load(f)["history"] == json.load(g)["history"]

    # `anonvid eval` restores the last checkpoint and evaluates it afresh: the same metrics as the run's last epoch
    from anonvid import cli

    monkeypatch.chdir(ROOT)
    assert cli.main(["eval", "--workdir", str(straight), *ARGS]) == 0
    with open(straight / "eval.json") as f, open(straight / "results.json") as g:
        evaluated, trained = json.load(f), json.load(g)["final"]
    assert evaluated["steps"] == 24
    assert evaluated["final"]["top1"] == trained["top1"]
    np.testing.assert_allclose(evaluated["final"]["loss"], trained["loss"], rtol=1e-6)
