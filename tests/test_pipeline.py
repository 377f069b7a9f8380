"""Tests of the grain input pipeline (anonvid.data.pipeline)."""
import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from anonvid.data.pipeline import ArraySource, make_batches


def _source(n=10):
    return ArraySource({"id": np.arange(n, dtype=np.int32), "x": np.arange(n * 6, dtype=np.float32).reshape(n, 2, 3)})


def _ids(it):
    return [np.asarray(b["id"]).tolist() for b in it]


def test_array_source():
    src = _source(4)
    assert len(src) == 4
    item = src[2]
    assert item["id"] == 2 and item["x"].shape == (2, 3)
    with pytest.raises(IndexError, match="out of range"):
        src[4]
    with pytest.raises(ValueError, match="leading dimension"):
        ArraySource({"a": np.zeros(3), "b": np.zeros(4)})
    with pytest.raises(ValueError, match="no arrays"):
        ArraySource({})


def test_one_epoch_covers_every_example_once():
    it = make_batches(_source(10), global_batch_size=5, seed=0, num_epochs=1)
    batches = list(it)
    assert len(batches) == len(it) == 2
    ids = sum(_ids(batches), [])
    assert sorted(ids) == list(range(10))  # every example exactly once
    assert ids != list(range(10))  # shuffled
    b = batches[0]
    assert isinstance(b["x"], jax.Array) and b["x"].shape == (5, 2, 3) and b["x"].dtype == np.float32
    np.testing.assert_array_equal(np.asarray(b["x"]), np.arange(60, dtype=np.float32).reshape(10, 2, 3)[ids[:5]])


def test_epochs_drop_remainder_and_padding():
    it = make_batches(_source(10), global_batch_size=4, seed=1, num_epochs=2)
    ids = _ids(it)
    assert len(ids) == 5  # floor(20 / 4)
    flat = sum(ids, [])  # two epochs, each a permutation
    assert sorted(flat[:10]) == sorted(flat[10:]) == list(range(10))
    padded = list(make_batches(_source(10), global_batch_size=4, seed=1, num_epochs=1, drop_remainder=False))
    assert len(padded) == 3
    valid = np.concatenate([np.asarray(b["valid"]) for b in padded])
    assert valid.tolist() == [True] * 10 + [False] * 2
    seen = np.concatenate([np.asarray(b["id"]) for b in padded])[valid]
    assert sorted(seen.tolist()) == list(range(10))
    unshuffled = _ids(make_batches(_source(6), global_batch_size=3, seed=0, shuffle=False, num_epochs=1))
    assert unshuffled == [[0, 1, 2], [3, 4, 5]]


def test_epochs_are_shuffled_differently():
    flat = sum(_ids(make_batches(_source(10), global_batch_size=5, seed=3, num_epochs=2)), [])
    assert sorted(flat[:10]) == sorted(flat[10:]) == list(range(10)) and flat[:10] != flat[10:]


def test_deterministic_by_seed():
    a = _ids(make_batches(_source(), global_batch_size=2, seed=4, num_epochs=1))
    b = _ids(make_batches(_source(), global_batch_size=2, seed=4, num_epochs=1))
    c = _ids(make_batches(_source(), global_batch_size=2, seed=5, num_epochs=1))
    assert a == b and a != c


def test_resume_from_state_sees_the_same_batches():
    it = make_batches(_source(), global_batch_size=3, seed=2)  # infinite
    head = [next(it) for _ in range(4)]
    state = json.loads(json.dumps(it.get_state()))  # JSON round trip, as a checkpoint would store it
    tail = _ids(next(it) for _ in range(6))
    resumed = make_batches(_source(), global_batch_size=3, seed=2)
    resumed.set_state(state)
    assert _ids(next(resumed) for _ in range(6)) == tail
    assert state["step"] == len(head)
    with pytest.raises(ValueError, match="seed"):
        make_batches(_source(), global_batch_size=3, seed=9).set_state(state)


def test_transform_is_applied():
    it = make_batches(_source(4), global_batch_size=2, seed=0, num_epochs=1,
                      transform=lambda e: {**e, "x2": e["x"] * 2})
    b = next(it)
    np.testing.assert_array_equal(np.asarray(b["x2"]), 2 * np.asarray(b["x"]))


def test_validation_errors():
    with pytest.raises(ValueError, match="split 'test' is empty"):
        make_batches(ArraySource({"a": np.zeros((0, 2))}), global_batch_size=2, seed=0, name="split 'test'")
    with pytest.raises(ValueError, match="fewer than one global batch"):
        make_batches(_source(3), global_batch_size=4, seed=0, num_epochs=1)
    with pytest.raises(ValueError, match="positive"):
        make_batches(_source(3), global_batch_size=0, seed=0)
    with pytest.raises(TypeError, match="infinite"):
        len(make_batches(_source(3), global_batch_size=1, seed=0))


def test_worker_processes_match_in_process_reading():
    kw = dict(global_batch_size=4, seed=6, num_epochs=1, drop_remainder=False)
    expected = _ids(make_batches(_source(), **kw))
    it = make_batches(_source(), worker_count=2, **kw)
    try:
        assert _ids(it) == expected
    finally:
        it.close()


_SHARDED = textwrap.dedent("""
    import json, sys
    import jax, numpy as np
    from jax.sharding import AxisType, NamedSharding, PartitionSpec as P
    from anonvid.data.pipeline import ArraySource, make_batches

    assert jax.device_count() == 8, jax.devices()
    mesh = jax.make_mesh((4, 2), ("data", "model"), axis_types=(AxisType.Auto,) * 2)
    sharding = NamedSharding(mesh, P("data"))
    src = ArraySource({"id": np.arange(16, dtype=np.int32), "v": np.zeros((16, 3, 5), np.uint8)})
    it = make_batches(src, global_batch_size=8, seed=0, num_epochs=1, sharding=sharding)
    out = {"ids": [], "ok": True}
    for b in it:
        for k, a in b.items():
            out["ok"] &= a.sharding == NamedSharding(mesh, P("data")) and a.shape[0] == 8
            out["ok"] &= len(a.addressable_shards) == 8 and a.addressable_shards[0].data.shape[0] == 2
        out["ids"] += np.asarray(b["id"]).tolist()
    try:
        make_batches(src, global_batch_size=6, seed=0, sharding=sharding)
        out["error"] = None
    except ValueError as e:
        out["error"] = str(e)
    print(json.dumps(out))
""")


def test_sharded_batches_on_8_fake_devices():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8", "JAX_PLATFORMS": "cpu"}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", _SHARDED], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["ok"]
    assert sorted(out["ids"]) == list(range(16))
    assert "not divisible by the 4 shards" in out["error"]


_PROCESS = textwrap.dedent("""
    import json, sys
    import jax
    jax.distributed.initialize(coordinator_address=sys.argv[2], num_processes=2, process_id=int(sys.argv[1]))
    import numpy as np
    from jax.sharding import AxisType, NamedSharding, PartitionSpec as P
    from anonvid.data.pipeline import ArraySource, make_batches

    mesh = jax.make_mesh((4, 2), ("data", "model"), axis_types=(AxisType.Auto,) * 2)
    src = ArraySource({"id": np.arange(16, dtype=np.int32)})
    it = make_batches(src, global_batch_size=8, seed=0, num_epochs=1, sharding=NamedSharding(mesh, P("data")))
    local = []
    for b in it:
        assert b["id"].shape == (8,)
        local.append(sorted({int(x) for s in b["id"].addressable_shards for x in np.asarray(s.data)}))
    print(json.dumps(local))
""")


def test_two_processes_read_their_own_slices():
    # Two JAX processes with 4 CPU devices each on localhost: each must hold exactly its contiguous half of
    # every global batch, as the single-process iterator orders them.
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{s.getsockname()[1]}"
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu"}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    procs = [subprocess.Popen([sys.executable, "-c", _PROCESS, str(i), address], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-3000:]
        outs.append(json.loads(out.strip().splitlines()[-1]))
    expected = _ids(make_batches(ArraySource({"id": np.arange(16, dtype=np.int32)}), global_batch_size=8, seed=0,
                                 num_epochs=1))
    for pid, local in enumerate(outs):
        assert local == [sorted(batch[4 * pid:4 * pid + 4]) for batch in expected]


def test_builder_data_source_as_source(tmp_path):
    from anonvid.data.builders import synthetic as builders
    from anonvid.data import synthetic

    sources = builders.prepare("actions", "tiny", data_dir=str(tmp_path))
    it = make_batches(sources["test"], global_batch_size=4, seed=0, num_epochs=1, name="split 'test'")
    batches = list(it)
    assert len(batches) == 4  # 16 test clips
    b = batches[0]
    assert b["video"].shape == (4, 8, 32, 32, 3) and b["video"].dtype == np.uint8
    ref = synthetic.actions_split("test", 16, seed=0, num_frames=8, height=32, width=32)
    idx = np.asarray(b["index"])
    np.testing.assert_array_equal(np.asarray(b["video"]), ref["video"][idx])
    np.testing.assert_array_equal(np.asarray(b["action"]), ref["action"][idx])
    assert sorted(np.concatenate([np.asarray(x["index"]) for x in batches]).tolist()) == list(range(16))
