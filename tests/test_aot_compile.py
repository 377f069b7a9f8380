"""launch.aot_compile: the tiny dual-ViT train step compiled ahead of time on 8 fake CPU devices (in a subprocess
of its own), its per-device bytes checked against a hand computation from the model's abstract parameters and
the rules; argument parsing and bad input."""
import json
import math
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from flax import nnx
from jax.sharding import PartitionSpec as P

from anonvid import sharding as shd
from anonvid.models.dual_vit import DualViT
from launch import aot_compile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MESH = {"data": 4, "model": 2}
# Tiny variant on 2×16×16 clips: 2×8×8 tubelets → 1×2×2 = 4 tokens (small shapes, one quick compile).
ARGS = ["--variant", "tiny", "--frames", "2", "--size", "16", "--batch", "8", "--mesh", "data=4,model=2",
        "--rules", "embed=data", "--device-memory-gib", "1"]


def _launch(*args, devices=8):
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_PLATFORMS")}
    return subprocess.run([sys.executable, "-m", "launch.aot_compile", "--fake-devices", str(devices), *args],
                          check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("aot") / "report.json"
    proc = _launch(*ARGS, "--json", str(out))
    assert proc.returncode == 0, proc.stderr[-4000:]
    with open(out) as f:
        return json.load(f), proc.stdout


def _expected_param_bytes_per_device():
    """Σ over parameters of bytes / (product of the mesh axes its dimensions are split over), by hand: a
    dimension is split over the mesh axis its logical name maps to when the size divides and that axis is not
    already used by an earlier dimension of the same array."""
    model = nnx.eval_shape(lambda: DualViT(51, variant="tiny", num_frames=2, image_size=(16, 16),
                                           rngs=nnx.Rngs(0)))
    params = nnx.state(model, nnx.Param)
    rules = dict(shd.DEFAULT_RULES, embed="data")
    logical = jax.tree.leaves(nnx.get_partition_spec(params), is_leaf=lambda x: isinstance(x, P))
    total = per_device = 0
    for spec, leaf in zip(logical, jax.tree.leaves(params)):
        nbytes = math.prod(leaf.shape) * np.dtype(leaf.dtype).itemsize
        used, split = set(), 1
        for name, size in zip(tuple(spec), leaf.shape):
            axis = rules.get(name) if name else None
            if axis and axis not in used and size % MESH[axis] == 0:
                used.add(axis)
                split *= MESH[axis]
        total += nbytes
        per_device += nbytes // split
    return total, per_device


def test_tiny_report_bytes_per_device(tiny_report):
    r, _ = tiny_report
    total, per_device = _expected_param_bytes_per_device()
    assert r["devices"] == 8 and r["mesh"] == MESH and r["platform"] == "cpu"
    assert r["tokens"] == 4 and r["rules"]["embed"] == "data"
    assert r["param_bytes_total"] == total
    b = r["bytes_per_device"]
    assert b["params"] == per_device
    assert per_device < total / 2  # the rules really shard (the check would pass trivially if all replicated)
    # AdamW: two param-shaped moments, sharded like the parameters, plus int32 step counts.
    assert 2 * b["params"] <= b["optimizer_state"] <= 2 * b["params"] + 64
    # 8 clips over data=4 → 2 per device: uint8 video 2×2×16×16×3, int32 action (2,) and privacy (2, 5).
    assert b["batch"] == 2 * 2 * 16 * 16 * 3 + 2 * 4 + 2 * 5 * 4
    specs = r["param_specs"]
    assert specs["blocks/0/fc1/kernel"] == "('data', 'model')"
    assert specs["action_head/kernel"] == "('data', None)"
    assert specs["cls_tokens"] == "(None, None, 'data')"


def test_tiny_report_compiled_fields(tiny_report):
    r, text = tiny_report
    c, b = r["compiled_bytes_per_device"], r["bytes_per_device"]
    assert set(c) == {"argument", "output", "alias", "temp", "generated_code"}
    # XLA:CPU reports them all; the compiled program's arguments are exactly the sharded state and batch, and
    # the donated state is aliased to the new state.
    assert c["argument"] == sum(b.values())
    assert c["alias"] == b["params"] + b["optimizer_state"] + b["other_state"]
    assert c["temp"] > 0
    assert r["peak_bytes_per_device"] == c["argument"] + c["output"] - c["alias"] + c["temp"] + c["generated_code"]
    assert r["fits"] is True and r["flops_per_device"] > 0
    assert r["privacy_mode"] == "adversarial" and r["augment"] is True
    for line in ("parameters", "optimizer state", "batch", "temporaries (activations)", "estimated peak",
                 "FITS:", "FLOPs per device per step"):
        assert line in text


def test_format_report_does_not_fit_and_missing_fields(tiny_report):
    r = dict(tiny_report[0], device_memory_gib=1e-4, fits=False, flops_per_device=None)
    r["compiled_bytes_per_device"] = dict(r["compiled_bytes_per_device"], temp=None)
    text = aot_compile.format_report(r)
    assert "DOES NOT FIT" in text and "not reported by the backend: temp" in text
    assert "FLOPs per device per step: n/a" in text


@pytest.mark.parametrize("args, message", [
    (["--mesh", "data=3,model=2"], "does not fit 8 devices"),
    (["--batch", "6"], "multiples of the data-parallel size 4"),
])
def test_bad_input_in_subprocess(args, message):
    proc = _launch(*ARGS, *args)
    assert proc.returncode == 2
    assert message in proc.stderr


@pytest.mark.parametrize("args, message", [
    (["--variant", "huge"], "unknown variant 'huge'; known variants: tiny, small, base"),
    (["--rules", "embedding=data"], "unknown logical axis ['embedding']"),
    (["--rules", "embed=fsdp"], "--rules maps to mesh axes ['fsdp'] that the mesh ['data', 'model'] does not have"),
    (["--mesh", "data:8"], "bad --mesh entry 'data:8'"),
    (["--frames", "3"], "T (frames) = 3 is not a positive multiple of the tubelet size 2"),
])
def test_bad_input_in_process(capsys, args, message):
    with pytest.raises(SystemExit) as exc:  # fails before compiling, on the test process's devices
        aot_compile.main(["--mesh", "data=-1,model=1", "--variant", "tiny", "--batch", "1", *args])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_parse_mesh_and_rules():
    assert aot_compile.parse_mesh("data=8, model=2") == (("data", 8), ("model", 2))
    assert aot_compile.parse_mesh("data=-1") == (("data", -1),)
    assert aot_compile.parse_rules("embed=data,mlp=None") == {"embed": "data", "mlp": None}
    for bad in ("data=0", "data=x", "=4", ""):
        with pytest.raises(ValueError, match="--mesh"):
            aot_compile.parse_mesh(bad)
    with pytest.raises(ValueError, match="--rules"):
        aot_compile.parse_rules("embed")
