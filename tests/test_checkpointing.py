"""Tests for anonvid.checkpointing: round trips, pruning, atomicity, damaged steps, sharded restore.

Expected values are built independently with numpy; sharding tests run on 8 fake CPU devices in a subprocess.
"""
import glob
import logging
import os
import shutil
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from anonvid.checkpointing import CheckpointError, Checkpointer, abstract_like, key_from_data, key_to_data

# A failed Orbax restore abandons its sibling read coroutines; they are garbage-collected later with "Event
# loop is closed" / GeneratorExit noise (orbax-checkpoint 0.12.8), which pytest reports against whichever test
# runs then. It is harmless and not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_state(offset: int = 0) -> dict:
    return {
        "w": jnp.arange(6, dtype=jnp.float32).reshape(2, 3) + offset,
        "b": jnp.full((3,), 0.5 + offset, dtype=jnp.bfloat16),
        "step": jnp.asarray(offset, dtype=jnp.int32),
        "rng": key_to_data(jax.random.key(42)),
        "nested": {"u8": jnp.asarray([1, 2, 250, 255], dtype=jnp.uint8)},
    }


def expected_state(offset: int = 0) -> dict:
    """The numpy oracle for make_state (written out independently)."""
    return {
        "w": np.array([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]], np.float32) + offset,
        "b": np.full((3,), 0.5 + offset, np.float32),
        "step": np.int32(offset),
        "nested": {"u8": np.array([1, 2, 250, 255], np.uint8)},
    }


def assert_state_equals(restored, offset):
    want = expected_state(offset)
    np.testing.assert_array_equal(np.asarray(restored["w"]), want["w"])
    np.testing.assert_array_equal(np.asarray(restored["b"], np.float32), want["b"])
    assert int(restored["step"]) == offset
    np.testing.assert_array_equal(np.asarray(restored["nested"]["u8"]), want["nested"]["u8"])


def save_steps(directory, steps, **kwargs):
    with Checkpointer(directory, **kwargs) as ckpt:
        for s in steps:
            assert ckpt.save(s, make_state(s), {"pos": s, "cfg": {"lr": 0.1, "mesh": [["data", -1]]}})


def test_roundtrip_values_dtypes_meta(tmp_path):
    state = make_state(3)
    meta = {"data_position": 17, "config": {"lr": 1e-3, "mesh": (("data", -1),), "name": "x"}}
    with Checkpointer(tmp_path / "ck") as ckpt:
        assert ckpt.latest_step() is None
        assert ckpt.save(3, state, meta)
    # A fresh object, as a resumed process would build.
    with Checkpointer(tmp_path / "ck") as ckpt:
        assert ckpt.all_steps() == [3] and ckpt.latest_step() == 3
        restored, restored_meta = ckpt.restore(abstract_like(state))
        assert ckpt.restored_step == 3
    assert_state_equals(restored, 3)
    for name in ("w", "b", "step", "rng"):
        assert restored[name].dtype == state[name].dtype, name
    assert restored["nested"]["u8"].dtype == jnp.uint8
    np.testing.assert_array_equal(np.asarray(restored["rng"]), np.asarray(jax.random.key_data(jax.random.key(42))))
    # JSON semantics: tuples come back as lists.
    assert restored_meta == {"data_position": 17, "config": {"lr": 1e-3, "mesh": [["data", -1]], "name": "x"}}


def test_keep_last_n_prunes_oldest(tmp_path):
    d = tmp_path / "ck"
    save_steps(d, [1, 2, 3, 4], keep=2)
    assert sorted(n for n in os.listdir(d) if n.isdigit()) == ["3", "4"]
    with Checkpointer(d, keep=2) as ckpt:
        assert ckpt.all_steps() == [3, 4]


def test_restore_specific_step_and_unknown_step(tmp_path):
    d = tmp_path / "ck"
    save_steps(d, [1, 2, 3])
    with Checkpointer(d) as ckpt:
        state, meta = ckpt.restore(abstract_like(make_state()), step=2)
        assert_state_equals(state, 2)
        assert meta["pos"] == 2
        with pytest.raises(CheckpointError, match=r"step 7 is not in .*available steps: \[1, 2, 3\]"):
            ckpt.restore(abstract_like(make_state()), step=7)


def test_save_interval_and_force(tmp_path):
    with Checkpointer(tmp_path / "ck", save_interval_steps=5, keep=None) as ckpt:
        assert ckpt.save(0, make_state(0), {})  # first checkpoint
        assert not ckpt.save(3, make_state(3), {})  # off-interval
        assert ckpt.save(5, make_state(5), {})
        assert ckpt.save(7, make_state(7), {}, force=True)
        assert ckpt.all_steps() == [0, 5, 7]


def test_existing_step_is_kept_not_overwritten(tmp_path, caplog):
    d = tmp_path / "ck"
    save_steps(d, [1])
    with Checkpointer(d) as ckpt, caplog.at_level(logging.WARNING, logger="anonvid.checkpointing"):
        assert ckpt.save(1, make_state(9), {"pos": 9}) is False
        assert "step 1 already exists" in caplog.text
        caplog.clear()
        assert ckpt.save(1, make_state(9), {"pos": 9}, force=True) is False
        assert "step 1 already exists" in caplog.text
        state, meta = ckpt.restore(abstract_like(make_state()))
    assert_state_equals(state, 1)
    assert meta["pos"] == 1


def test_leftover_tmp_dir_is_ignored_and_replaced(tmp_path):
    d = tmp_path / "ck"
    save_steps(d, [1, 2])
    # What a save killed half-way leaves behind: an unfinished copy with files missing.
    tmp = d / "3.orbax-checkpoint-tmp"
    shutil.copytree(d / "2", tmp)
    os.remove(tmp / "state" / "manifest.ocdbt")
    with Checkpointer(d) as ckpt:
        assert ckpt.all_steps() == [1, 2] and ckpt.latest_step() == 2
        state, _ = ckpt.restore(abstract_like(make_state()))
        assert_state_equals(state, 2)
        assert ckpt.save(3, make_state(3), {"pos": 3})
        assert not tmp.exists()
        state, meta = ckpt.restore(abstract_like(make_state()))
    assert_state_equals(state, 3)
    assert meta == {"pos": 3}


def _run(script: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True, text=True, timeout=120, cwd=REPO,
        env={**os.environ, "PYTHONPATH": REPO, "JAX_PLATFORMS": "cpu", **env},
    )


def test_process_killed_before_rename_keeps_last_good_step(tmp_path):
    d = tmp_path / "ck"
    save_steps(d, [1])
    # The child dies at the last moment of a save: all files written, the rename not yet done.
    proc = _run(f"""
        import os
        import jax.numpy as jnp
        from orbax.checkpoint._src.path import atomicity
        from anonvid.checkpointing import Checkpointer

        async def die(*args, **kwargs):
            os._exit(17)

        atomicity.AtomicRenameTemporaryPath.finalize = die
        Checkpointer({str(d)!r}).save(2, {{"w": jnp.ones((2, 3))}}, {{}})
    """)
    assert proc.returncode == 17, proc.stderr[-3000:]
    assert not (d / "2").exists()
    assert glob.glob(str(d / "2.orbax-checkpoint-tmp*"))
    with Checkpointer(d) as ckpt:
        assert ckpt.latest_step() == 1
        state, _ = ckpt.restore(abstract_like(make_state()))
    assert_state_equals(state, 1)


def _truncate_data_files(step_dir):
    files = glob.glob(str(step_dir / "state" / "d" / "*"))
    assert files
    for f in files:
        with open(f, "r+b") as fh:
            fh.truncate(5)


CORRUPTIONS = {
    "truncated array data": _truncate_data_files,
    "deleted array manifest": lambda p: os.remove(p / "state" / "manifest.ocdbt"),
    "deleted meta file": lambda p: os.remove(p / "meta" / "metadata"),
    "emptied step dir": lambda p: [shutil.rmtree(p), os.mkdir(p)],
}


@pytest.mark.parametrize("corrupt", list(CORRUPTIONS), ids=list(CORRUPTIONS))
def test_damaged_latest_step_raises_and_older_step_restores(tmp_path, corrupt):
    d = tmp_path / "ck"
    save_steps(d, [1, 2])
    step1_files = sorted(glob.glob(str(d / "1" / "**"), recursive=True))
    CORRUPTIONS[corrupt](d / "2")
    with Checkpointer(d) as ckpt:
        with pytest.raises(CheckpointError) as err:
            ckpt.restore(abstract_like(make_state()))
        msg = str(err.value)
        assert str(d) in msg and "step 2" in msg and "damaged" in msg
        assert "step=1" in msg and "fallback=True" in msg and str(d / "2") in msg
        # Nothing deleted: both step directories and every file of step 1 are still there.
        assert ckpt.all_steps() == [1, 2]
        assert sorted(glob.glob(str(d / "1" / "**"), recursive=True)) == step1_files
        state, meta = ckpt.restore(abstract_like(make_state()), step=1)
        assert_state_equals(state, 1)
        state, meta = ckpt.restore(abstract_like(make_state()), fallback=True)
        assert ckpt.restored_step == 1 and meta["pos"] == 1
        assert_state_equals(state, 1)
        # The fix the message suggests: drop the damaged step, then the default restore works again.
        ckpt.delete(2)
        assert not (d / "2").exists() and ckpt.latest_step() == 1
        assert ckpt.restore(abstract_like(make_state()))[1]["pos"] == 1


def test_fallback_with_every_step_damaged_lists_them(tmp_path):
    d = tmp_path / "ck"
    save_steps(d, [1, 2])
    for s in (1, 2):
        _truncate_data_files(d / str(s))
    with Checkpointer(d) as ckpt, pytest.raises(CheckpointError, match=r"(?s)step 2:.*step 1:"):
        ckpt.restore(abstract_like(make_state()), fallback=True)
    assert sorted(n for n in os.listdir(d) if n.isdigit()) == ["1", "2"]


def test_target_mismatch_is_reported_as_mismatch_not_damage(tmp_path):
    d = tmp_path / "ck"
    save_steps(d, [1])
    target = abstract_like(make_state())
    target["w"] = jax.ShapeDtypeStruct((4, 3), jnp.float32, sharding=target["w"].sharding)
    with Checkpointer(d) as ckpt:
        with pytest.raises(CheckpointError, match=r"does not match abstract_state: w has shape \(2, 3\)"):
            ckpt.restore(target)
        target = abstract_like(make_state())
        target["extra"] = target["step"]
        with pytest.raises(CheckpointError, match=r"not in the checkpoint: \['extra'\]"):
            ckpt.restore(target)


def test_nnx_and_optax_state_roundtrip(tmp_path):
    import optax
    from flax import nnx

    model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
    params = nnx.state(model, nnx.Param)
    opt_state = optax.adam(1e-2).init(params)
    state = {"params": params, "opt": opt_state, "step": jnp.asarray(4, jnp.int32)}
    with Checkpointer(tmp_path / "ck") as ckpt:
        ckpt.save(4, state, {})
        restored, _ = ckpt.restore(abstract_like(state))
        # The keypath normaliser must see namedtuples / nnx.State and Orbax's stored dicts as the same tree.
        assert ckpt._target_mismatch(4, abstract_like(state)) is None
    assert jax.tree.structure(restored) == jax.tree.structure(state)
    for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(state)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_prng_key_helpers_restore_the_same_stream(tmp_path):
    key = jax.random.key(7, impl="rbg")
    state = {"rng": key_to_data(key)}
    with Checkpointer(tmp_path / "ck") as ckpt:
        ckpt.save(0, state, {"rng_impl": str(jax.random.key_impl(key))})
        restored, meta = ckpt.restore(abstract_like(state))
    again = key_from_data(restored["rng"], impl=meta["rng_impl"])
    np.testing.assert_array_equal(
        np.asarray(jax.random.normal(again, (4,))), np.asarray(jax.random.normal(key, (4,)))
    )


def test_async_save_roundtrip_and_pruning(tmp_path):
    d = tmp_path / "ck"
    with Checkpointer(d, keep=2, async_save=True) as ckpt:
        for s in (1, 2, 3):
            assert ckpt.save(s, make_state(s), {"pos": s})
        ckpt.wait_until_finished()
        assert ckpt.all_steps() == [2, 3]
        state, meta = ckpt.restore(abstract_like(make_state()))
    assert_state_equals(state, 3)
    assert meta == {"pos": 3}
    assert sorted(n for n in os.listdir(d) if n.isdigit()) == ["2", "3"]


def test_directory_that_is_not_a_checkpoint(tmp_path):
    d = tmp_path / "notes"
    d.mkdir()
    (d / "readme.txt").write_text("hello")
    with Checkpointer(d) as ckpt:
        assert ckpt.latest_step() is None
        with pytest.raises(CheckpointError, match="No finished checkpoint in .*notes"):
            ckpt.restore(abstract_like(make_state()))
    # A directory that looks like a step but holds no checkpoint.
    (d / "7").mkdir()
    (d / "7" / "junk.bin").write_bytes(b"\x00" * 10)
    with Checkpointer(d) as ckpt, pytest.raises(CheckpointError, match="step 7 .* damaged"):
        ckpt.restore(abstract_like(make_state()))
    assert (d / "7" / "junk.bin").exists() and (d / "readme.txt").exists()


def test_directory_argument_errors(tmp_path, monkeypatch):
    f = tmp_path / "afile"
    f.write_text("x")
    with pytest.raises(CheckpointError, match="is a file, not a directory"):
        Checkpointer(f)
    with pytest.raises(CheckpointError, match="cannot be created or written"):
        Checkpointer(f / "sub")
    with pytest.raises(CheckpointError, match="does not exist .*read_only=True"):
        Checkpointer(tmp_path / "missing", read_only=True)

    # A directory we cannot write to (simulated: the suite may run as root, which ignores permissions).
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("anonvid.checkpointing.tempfile.NamedTemporaryFile", refuse)
    with pytest.raises(CheckpointError, match="cannot be created or written .*Permission denied"):
        Checkpointer(tmp_path / "ro")


def test_read_only_restores_but_refuses_to_save(tmp_path):
    d = tmp_path / "ck"
    save_steps(d, [1])
    with Checkpointer(d, read_only=True) as ckpt:
        state, _ = ckpt.restore(abstract_like(make_state()))
        assert_state_equals(state, 1)
        with pytest.raises(CheckpointError, match="read_only=True"):
            ckpt.save(2, make_state(2), {})
    assert sorted(n for n in os.listdir(d) if n.isdigit()) == ["1"]


def test_input_validation(tmp_path):
    with Checkpointer(tmp_path / "ck") as ckpt:
        with pytest.raises(ValueError, match="JSON-able"):
            ckpt.save(0, make_state(), {"arr": np.zeros(2)})
        with pytest.raises(ValueError, match=r"leaf \['lr'\] is a float"):
            ckpt.save(0, {"lr": 0.1}, {})
        with pytest.raises(ValueError, match="non-negative integer"):
            ckpt.save(-1, make_state(), {})
        with pytest.raises(ValueError, match="keep must be"):
            Checkpointer(tmp_path / "ck", keep=0)
        assert ckpt.all_steps() == []
        ckpt.save(0, make_state(), {})
        no_sharding = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), make_state())
        with pytest.raises(ValueError, match="has no sharding"):
            ckpt.restore(no_sharding)


SHARDED_SCRIPT = """
    import sys
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import AxisType, NamedSharding, PartitionSpec as P, SingleDeviceSharding
    from anonvid.checkpointing import Checkpointer

    assert jax.device_count() == 8, jax.devices()
    directory = sys.argv[1]
    w_np = np.arange(32, dtype=np.float32).reshape(8, 4)
    v_np = np.arange(4, dtype=np.int32) * 3
    mesh = jax.make_mesh((4, 2), ("data", "model"), axis_types=(AxisType.Auto,) * 2)
    state = {
        "w": jax.device_put(w_np, NamedSharding(mesh, P("data", "model"))),
        "v": jax.device_put(v_np, NamedSharding(mesh, P(None))),
    }
    with Checkpointer(directory) as ckpt:
        ckpt.save(1, state, {"mesh": [4, 2]})

    def check(target):
        with Checkpointer(directory) as ckpt:
            out, meta = ckpt.restore(target)
        assert meta == {"mesh": [4, 2]}
        for name, want in (("w", w_np), ("v", v_np)):
            assert out[name].sharding == target[name].sharding, (name, out[name].sharding, target[name].sharding)
            np.testing.assert_array_equal(np.asarray(out[name]), want)
            # Each device holds exactly the slice the target sharding assigns it.
            for shard in out[name].addressable_shards:
                np.testing.assert_array_equal(np.asarray(shard.data), want[shard.index])
        return out

    # Same mesh and specs as saved.
    check({
        "w": jax.ShapeDtypeStruct((8, 4), jnp.float32, sharding=NamedSharding(mesh, P("data", "model"))),
        "v": jax.ShapeDtypeStruct((4,), jnp.int32, sharding=NamedSharding(mesh, P(None))),
    })
    # A different mesh shape and partitioning than the one it was saved with.
    mesh2 = jax.make_mesh((2, 4), ("data", "model"), axis_types=(AxisType.Auto,) * 2)
    out = check({
        "w": jax.ShapeDtypeStruct((8, 4), jnp.float32, sharding=NamedSharding(mesh2, P("model", "data"))),
        "v": jax.ShapeDtypeStruct((4,), jnp.int32, sharding=NamedSharding(mesh2, P("model"))),
    })
    assert out["w"].addressable_shards[0].data.shape == (2, 2)
    # Onto a single device (e.g. an evaluator).
    one = SingleDeviceSharding(jax.devices()[5])
    check({
        "w": jax.ShapeDtypeStruct((8, 4), jnp.float32, sharding=one),
        "v": jax.ShapeDtypeStruct((4,), jnp.int32, sharding=one),
    })
    print("SHARDED-OK")
"""


def test_restore_into_sharded_targets_on_8_devices(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SHARDED_SCRIPT), str(tmp_path / "ck")],
        capture_output=True, text=True, timeout=180, cwd=REPO,
        env={**os.environ, "PYTHONPATH": REPO, "JAX_PLATFORMS": "cpu",
             "XLA_FLAGS": "--xla_force_host_platform_device_count=8"},
    )
    assert proc.returncode == 0 and "SHARDED-OK" in proc.stdout, proc.stderr[-4000:]
