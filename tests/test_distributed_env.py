"""anonvid.distributed: settings resolution from config, env and SLURM (no real jax.distributed.initialize)."""
import ml_collections
import pytest

from anonvid import distributed as dist

SLURM = {"SLURM_JOB_ID": "4242", "SLURM_NTASKS": "8", "SLURM_PROCID": "5", "SLURM_LOCALID": "1",
         "SLURM_JOB_NODELIST": "gpu[001-004,007],cpu01", "SLURM_STEP_NODELIST": "gpu[003-004]"}


@pytest.mark.parametrize("nodelist, hosts", [
    ("node7", ["node7"]),
    ("a,b", ["a", "b"]),
    ("gpu[001-003,007],cpu01", ["gpu001", "gpu002", "gpu003", "gpu007", "cpu01"]),
    ("n[8-10]", ["n8", "n9", "n10"]),
    ("n[08-10]", ["n08", "n09", "n10"]),
    ("r[1-2]-n[01-02],x", ["r1-n01", "r1-n02", "r2-n01", "r2-n02", "x"]),
])
def test_expand_nodelist(nodelist, hosts):
    assert dist.expand_nodelist(nodelist) == hosts
    assert dist.first_host(nodelist) == hosts[0]


@pytest.mark.parametrize("bad", ["", "a[", "a]", "a[]", "a[3-1]", "a[x-2]", "a,,b", "a[[1]]"])
def test_bad_nodelist_raises(bad):
    with pytest.raises(ValueError, match="nodelist"):
        dist.expand_nodelist(bad)


def test_parse_coordinator():
    assert dist.parse_coordinator("10.1.2.3:1234") == ("10.1.2.3", 1234)
    assert dist.parse_coordinator("[::1]:80") == ("::1", 80)
    for bad in ["host", "host:", ":80", "host:0", "host:70000", "host:x", "a:b:c"]:
        with pytest.raises(ValueError, match="coordinator"):
            dist.parse_coordinator(bad)


def test_nothing_set_is_single_process():
    assert dist.resolve_distributed_settings({}, {}) is None
    # Typed placeholders in a config count as unset.
    assert dist.resolve_distributed_settings(
        {"coordinator_address": "", "num_processes": 0, "process_id": -1, "local_device_ids": ()}, {}) is None
    assert dist.resolve_distributed_settings({}, {"ANONVID_NUM_PROCESSES": "1"}) is None


def test_slurm_environment():
    s = dist.resolve_distributed_settings({}, SLURM)
    assert s.num_processes == 8 and s.process_id == 5
    # Step nodelist wins over job nodelist; port derived from the job id: 62000 + 4242 % 3000.
    assert s.coordinator_address == "gpu003:63242"
    assert s.sources == {"num_processes": "slurm", "process_id": "slurm", "coordinator_address": "slurm"}
    assert s.local_device_ids is None
    kwargs = s.initialize_kwargs()
    assert kwargs == {"coordinator_address": "gpu003:63242", "num_processes": 8, "process_id": 5}


def test_slurm_job_nodelist_and_step_task_count():
    env = {k: v for k, v in SLURM.items() if k != "SLURM_STEP_NODELIST"}
    env["SLURM_STEP_NUM_TASKS"] = "6"
    s = dist.resolve_distributed_settings({"coordinator_port": 5555}, env)
    assert s.coordinator_address == "gpu001:5555" and s.num_processes == 6


def test_slurm_needs_procid():
    # An salloc shell (no srun task) has SLURM_NTASKS but no SLURM_PROCID: not a task, stay single-process.
    env = {k: v for k, v in SLURM.items() if k != "SLURM_PROCID"}
    assert dist.resolve_distributed_settings({}, env) is None


def test_env_overrides_slurm_and_config_overrides_env():
    env = dict(SLURM, ANONVID_COORDINATOR="head:7000", ANONVID_PROCESS_ID="2")
    s = dist.resolve_distributed_settings({}, env)
    assert (s.coordinator_address, s.num_processes, s.process_id) == ("head:7000", 8, 2)
    assert s.sources == {"coordinator_address": "env", "num_processes": "slurm", "process_id": "env"}
    s = dist.resolve_distributed_settings(
        {"coordinator_address": "cfg:1", "num_processes": 3, "process_id": 0, "local_device_ids": "0,1"}, env)
    assert (s.coordinator_address, s.num_processes, s.process_id) == ("cfg:1", 3, 0)
    assert s.local_device_ids == (0, 1)
    assert set(s.sources.values()) == {"config"}


def test_env_only_with_options():
    env = {"ANONVID_COORDINATOR": "[::1]:9000", "ANONVID_NUM_PROCESSES": "2", "ANONVID_PROCESS_ID": "1",
           "ANONVID_LOCAL_DEVICE_IDS": "3", "ANONVID_CPU_COLLECTIVES": "GLOO"}
    s = dist.resolve_distributed_settings({"initialization_timeout": 60}, env)
    assert s.coordinator_address == "[::1]:9000"
    assert s.local_device_ids == (3,) and s.cpu_collectives == "gloo"
    assert s.initialize_kwargs()["local_device_ids"] == [3]
    assert s.initialize_kwargs()["initialization_timeout"] == 60


def test_auto_detect_passes_unknowns_to_jax():
    s = dist.resolve_distributed_settings({}, {"ANONVID_DISTRIBUTED_AUTO": "1"})
    assert s.auto_detect and s.initialize_kwargs() == {}
    # Config beats env for the flag too.
    assert dist.resolve_distributed_settings({"auto_detect": False}, {"ANONVID_DISTRIBUTED_AUTO": "1"}) is None


@pytest.mark.parametrize("fields, env, match", [
    ({"num_processes": 4}, {}, "coordinator_address and process_id unknown"),
    ({"num_processes": 4, "process_id": 1}, {}, "coordinator_address unknown"),
    ({"process_id": 1}, {}, "no process count"),
    ({}, {"ANONVID_COORDINATOR": "h:1"}, "ANONVID_COORDINATOR"),
    ({"num_processes": 2, "process_id": 2, "coordinator_address": "h:1"}, {}, r"outside \[0, 2\)"),
    ({}, {"ANONVID_NUM_PROCESSES": "two"}, "ANONVID_NUM_PROCESSES.*integer"),
    ({"num_processes": 2, "process_id": 0, "coordinator_address": "h"}, {}, "host:port"),
    ({}, dict(SLURM, ANONVID_COORDINATOR="h:99999"), "ANONVID_COORDINATOR.*65535"),
    ({}, dict(SLURM, SLURM_PROCID="9"), "SLURM"),
    ({"cpu_collectives": "nccl"}, SLURM, "gloo"),
    ({"local_device_ids": "0,0"}, SLURM, "distinct"),
    ({}, dict(SLURM, ANONVID_DISTRIBUTED_AUTO="maybe"), "boolean"),
])
def test_bad_settings_raise_with_source(fields, env, match):
    with pytest.raises(ValueError, match=match):
        dist.resolve_distributed_settings(fields, env)


def test_distributed_fields_from_config_block_or_top_level():
    cfg = ml_collections.ConfigDict({"lr": 0.1, "distributed": {"num_processes": 2, "process_id": 1}})
    assert dist.distributed_fields(cfg) == {"num_processes": 2, "process_id": 1}
    assert dist.distributed_fields({"num_processes": 3, "lr": 1}) == {"num_processes": 3}
    assert dist.distributed_fields(None) == {}


def test_initialize_from_config_calls_jax_only_when_needed(monkeypatch):
    import jax
    calls, updates = [], []
    monkeypatch.setattr(jax.distributed, "is_initialized", lambda: False)
    monkeypatch.setattr(jax.distributed, "initialize", lambda **kw: calls.append(kw))
    monkeypatch.setattr(jax.config, "update", lambda name, value: updates.append((name, value)))

    assert dist.initialize_from_config({"distributed": {"num_processes": 1}}, environ={}) is None
    assert calls == [] and updates == []

    cfg = {"distributed": {"coordinator_address": "h:1", "num_processes": 2, "process_id": 1,
                           "cpu_collectives": "gloo"}}
    settings = dist.initialize_from_config(cfg, environ={})
    assert calls == [{"coordinator_address": "h:1", "num_processes": 2, "process_id": 1}]
    assert updates == [("jax_cpu_collectives_implementation", "gloo")]
    assert settings.process_id == 1

    monkeypatch.setattr(jax.distributed, "is_initialized", lambda: True)
    dist.initialize_from_config(cfg, environ={})
    assert len(calls) == 1  # not initialised twice
