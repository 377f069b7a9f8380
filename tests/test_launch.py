"""launch.tpu_vm and launch.gpu through --dry-run, fake gcloud/SLURM environments, and one real 2-process run."""
import os
import re
import shlex
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from launch import gpu, tpu_vm

REPO = Path(__file__).resolve().parent.parent
SLURM = {"SLURM_JOB_ID": "4242", "SLURM_NTASKS": "8", "SLURM_PROCID": "5", "SLURM_LOCALID": "1",
         "SLURM_JOB_NODELIST": "gpu[001-004,007],cpu01"}
TPU = ["--name", "av-v5e", "--zone", "us-west4-a", "--config", "configs/pruning.py:vp_ucf101",
       "--workdir", "gs://bucket/runs/p"]


def _lines(capsys):
    return [shlex.split(line) for line in capsys.readouterr().out.splitlines()]


def _error(capsys, main, argv, **kw):
    with pytest.raises(SystemExit) as exc:
        main(argv, **kw)
    assert exc.value.code == 2
    return capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- TPU VM

def test_tpu_dry_run_all_steps(capsys):
    assert tpu_vm.main(["--dry-run", "--spot", "--steps", "delete,run,create,install", *TPU,
                        "--", "--config.steps=100", "two words"]) == 0
    create, archive, scp, install, run, delete = _lines(capsys)
    assert create == ["gcloud", "compute", "tpus", "tpu-vm", "create", "av-v5e", "--zone", "us-west4-a",
                      "--accelerator-type", "v5litepod-16", "--version", "v2-alpha-tpuv5-lite", "--spot"]
    assert archive[:3] == ["git", "-C", str(REPO)] and archive[-1] == "HEAD"
    assert scp[:6] == ["gcloud", "compute", "tpus", "tpu-vm", "scp", "/tmp/anonvid-av-v5e.tar.gz"]
    assert "--worker=all" in scp
    for ssh in (install, run):
        assert ssh[:6] == ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "av-v5e"]
        assert ssh[ssh.index("--zone") + 1] == "us-west4-a"
        assert "--worker=all" in ssh
    remote_install = install[install.index("--command") + 1]
    assert "tar -xzf ~/anonvid.tar.gz" in remote_install
    assert "pip install -q -e ~/anonvid 'jax[tpu]==0.10.2'" in remote_install
    remote_run = shlex.split(run[run.index("--command") + 1])
    assert remote_run[:4] == ["cd", "~/anonvid", "&&", "ANONVID_DISTRIBUTED_AUTO=1"]
    assert remote_run[4:] == ["~/anonvid-venv/bin/anonvid", "train", "--config", "configs/pruning.py:vp_ucf101",
                              "--workdir", "gs://bucket/runs/p", "--config.steps=100", "two words"]
    assert delete == ["gcloud", "compute", "tpus", "tpu-vm", "delete", "av-v5e", "--zone", "us-west4-a",
                      "--quiet"]


def test_tpu_default_steps_git_clone_and_project(capsys):
    tpu_vm.main(["--dry-run", *TPU, "--project", "proj", "--repo-url", "https://example.org/anonvid.git",
                 "--ref", "v0.1", "--accelerator-type", "v5litepod-64"])
    lines = _lines(capsys)
    assert [cmd[4] for cmd in lines] == ["create", "ssh", "ssh"]  # no delete by default, no scp with git
    assert all(cmd[cmd.index("--project") + 1] == "proj" for cmd in lines)
    assert lines[0][lines[0].index("--accelerator-type") + 1] == "v5litepod-64"
    assert "--spot" not in lines[0]
    remote = lines[1][lines[1].index("--command") + 1]
    assert "git clone https://example.org/anonvid.git ~/anonvid" in remote
    assert "checkout v0.1" in remote


def test_tpu_jax_pin_matches_setup_py():
    pin = re.search(r'"jax==([^"]+)"', (REPO / "setup.py").read_text()).group(1)
    assert tpu_vm.DEFAULT_JAX_TPU == f"jax[tpu]=={pin}"


@pytest.mark.parametrize("argv, message", [
    (["--name", "av", "--config", "c", "--workdir", "gs://b"], "--zone"),
    (["--zone", "z", "--config", "c", "--workdir", "gs://b"], "--name"),
    (["--name", "Bad_Name", "--zone", "z", "--config", "c", "--workdir", "gs://b"], "lower-case"),
    ([*TPU, "--steps", "create,launch"], "unknown or empty step"),
    (["--name", "av", "--zone", "z", "--workdir", "gs://b"], "--config"),
    (["--name", "av", "--zone", "z", "--config", "c", "--workdir", "/tmp/run"], "not gs://"),
    ([*TPU, "--steps", "install", "--source", "/nonexistent"], "not a git checkout"),
])
def test_tpu_bad_input(capsys, argv, message):
    assert message in _error(capsys, tpu_vm.main, ["--dry-run", *argv])


def test_tpu_create_and_delete_only_need_no_config(capsys):
    assert tpu_vm.main(["--dry-run", "--name", "av", "--zone", "z", "--steps", "create,delete"]) == 0
    assert [cmd[4] for cmd in _lines(capsys)] == ["create", "delete"]


def test_tpu_runs_commands_in_order_and_stops_at_failure(tmp_path, monkeypatch, capsys):
    # A fake gcloud that logs its arguments and fails on ssh.
    log = tmp_path / "calls.txt"
    fake = tmp_path / "gcloud"
    fake.write_text(f'#!/bin/sh\necho "$4" >> {log}\n[ "$4" = ssh ] && exit 7\nexit 0\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert tpu_vm.main([*TPU, "--steps", "create,run,delete"]) == 7
    assert log.read_text().split() == ["create", "ssh"]  # delete not reached
    assert "tpu-vm delete av-v5e" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- GPU

def _env_and_cmd(tokens):
    env = dict(t.split("=", 1) for t in tokens if re.match(r"^[A-Z_]+=", t))
    return env, tokens[len(env):]


def test_gpu_local_dry_run(capsys):
    assert gpu.main(["--dry-run", "--local", "3", "--gpus-per-process", "2", "--port", "7000",
                     "--", "anonvid", "train", "--config", "c.py:smoke"], environ={}) == 0
    lines = _lines(capsys)
    assert len(lines) == 3
    for i, tokens in enumerate(lines):
        env, cmd = _env_and_cmd(tokens)
        assert env == {"ANONVID_COORDINATOR": "127.0.0.1:7000", "ANONVID_NUM_PROCESSES": "3",
                       "ANONVID_PROCESS_ID": str(i), "CUDA_VISIBLE_DEVICES": f"{2 * i},{2 * i + 1}"}
        assert cmd == ["anonvid", "train", "--config", "c.py:smoke"]


def test_gpu_slurm_task_dry_run(capsys):
    assert gpu.main(["--dry-run", "--gpus-per-process", "1", "--", "anonvid", "train"], environ=SLURM) == 0
    (tokens,) = _lines(capsys)
    env, cmd = _env_and_cmd(tokens)
    # First host of gpu[001-004,007],cpu01; port 62000 + 4242 % 3000; GPU = SLURM_LOCALID.
    assert env == {"ANONVID_COORDINATOR": "gpu001:63242", "ANONVID_NUM_PROCESSES": "8",
                   "ANONVID_PROCESS_ID": "5", "CUDA_VISIBLE_DEVICES": "1"}
    assert cmd == ["anonvid", "train"]


def test_gpu_flags_override_slurm(capsys):
    gpu.main(["--dry-run", "--coordinator", "head:1234", "--process-id", "2", "--cpu-collectives", "gloo",
              "--", "x"], environ=SLURM)
    env, _ = _env_and_cmd(_lines(capsys)[0])
    assert env == {"ANONVID_COORDINATOR": "head:1234", "ANONVID_NUM_PROCESSES": "8",
                   "ANONVID_PROCESS_ID": "2", "ANONVID_CPU_COLLECTIVES": "gloo"}


def test_gpu_single_process_sets_nothing(capsys):
    gpu.main(["--dry-run", "--", "anonvid", "train"], environ={})
    assert _lines(capsys) == [["anonvid", "train"]]


def test_gpu_task_mode_execs_with_env(monkeypatch):
    seen = {}

    def fake_exec(file, args, env):
        seen.update(file=file, args=args, env=env)
        raise SystemExit(0)

    monkeypatch.setattr(gpu.os, "execvpe", fake_exec)
    with pytest.raises(SystemExit):
        gpu.main(["--num-processes", "2", "--process-id", "1", "--coordinator", "10.0.0.1:99", "--",
                  "anonvid", "train"], environ={"KEEP": "me"})
    assert seen["file"] == "anonvid" and seen["args"] == ["anonvid", "train"]
    assert seen["env"] == {"KEEP": "me", "ANONVID_COORDINATOR": "10.0.0.1:99", "ANONVID_NUM_PROCESSES": "2",
                           "ANONVID_PROCESS_ID": "1"}


def test_gpu_sbatch_script(tmp_path, capsys):
    path = tmp_path / "job.sh"
    assert gpu.main(["--sbatch", str(path), "--nodes", "4", "--gpus-per-node", "8", "--partition", "a100",
                     "--python", "/opt/py", "--", "anonvid", "train", "--config", "c.py:x y"], environ={}) == 0
    script = path.read_text()
    for line in ["#SBATCH --nodes=4", "#SBATCH --ntasks-per-node=1", "#SBATCH --gpus-per-node=8",
                 "#SBATCH --partition=a100", f"cd {REPO}"]:
        assert line in script.splitlines()
    srun = shlex.split(script.splitlines()[-1])
    assert srun == ["srun", "--kill-on-bad-exit=1", "/opt/py", "-m", "launch.gpu", "--", "anonvid", "train",
                    "--config", "c.py:x y"]
    assert "sbatch" in capsys.readouterr().out
    gpu.main(["--sbatch", "-", "--", "x"], environ={})
    assert capsys.readouterr().out.startswith("#!/bin/bash\n")


@pytest.mark.parametrize("argv, environ, message", [
    (["--coordinator", "nohost", "--", "x"], {}, "--coordinator: coordinator 'nohost' is not host:port"),
    (["--coordinator", "h:99999", "--", "x"], {}, "1..65535"),
    (["--local", "2"], {}, "after a bare --"),
    (["--local", "0", "--", "x"], {}, "--local must be >= 1"),
    (["--local", "2", "--process-id", "1", "--", "x"], {}, "drop --num-processes/--process-id"),
    (["--num-processes", "2", "--", "x"], {}, "num_processes (from --num-processes) = 2 but coordinator_address"),
    (["--", "x"], dict(SLURM, SLURM_PROCID="8"), "process_id (from SLURM) = 8 is outside [0, 8)"),
    (["--", "x"], dict(SLURM, SLURM_JOB_NODELIST="gpu[001"), "nodelist"),
    (["--sbatch", "-", "--process-id", "1", "--", "x"], {}, "--sbatch takes the process layout"),
])
def test_gpu_bad_input(capsys, argv, environ, message):
    assert message in _error(capsys, gpu.main, ["--dry-run", *argv], environ=environ)


def test_gpu_local_failure_stops_the_others(capsys):
    # Process 1 fails at once; process 0 would sleep a minute unless the launcher stops it.
    child = "import os, sys, time; sys.exit(3) if os.environ['ANONVID_PROCESS_ID'] == '1' else time.sleep(60)"
    assert gpu.main(["--local", "2", "--", sys.executable, "-c", child], environ={}) == 3
    assert "stopping the others" in capsys.readouterr().err


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_gpu_local_two_real_jax_processes(tmp_path):
    # End to end on CPU: the launcher's env → anonvid.distributed.initialize_from_config → a cross-process
    # all-gather over gloo.
    script = tmp_path / "check.py"
    script.write_text(textwrap.dedent("""
        import os
        import numpy as np
        import jax
        from jax.experimental import multihost_utils
        from anonvid.distributed import initialize_from_config
        settings = initialize_from_config()
        got = multihost_utils.process_allgather(np.array([jax.process_index() + 10]))
        assert settings.num_processes == jax.process_count() == 2, jax.process_count()
        assert sorted(got.ravel().tolist()) == [10, 11], got
        # A file per process rather than stdout: in full-suite runs the children's piped output was sometimes
        # empty even though both exited 0.
        with open(os.path.join(os.path.dirname(__file__), f"ok{jax.process_index()}"), "w") as f:
            f.write(str(got.ravel().tolist()))
    """))
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO))
    result = subprocess.run(
        [sys.executable, "-m", "launch.gpu", "--local", "2", "--coordinator", f"127.0.0.1:{_free_port()}",
         "--cpu-collectives", "gloo", "--", sys.executable, str(script)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    for i in (0, 1):
        assert (tmp_path / f"ok{i}").read_text() == "[10, 11]", (result.stdout[-2000:], result.stderr[-2000:])
