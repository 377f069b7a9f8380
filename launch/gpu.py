"""Start anonvid as several cooperating JAX processes on GPU hosts (or on one CPU machine for testing).

Each process is told its place through anonvid's environment variables, which
`anonvid.distributed.initialize_from_config` reads: ANONVID_COORDINATOR (host:port of process 0),
ANONVID_NUM_PROCESSES, ANONVID_PROCESS_ID, and optionally ANONVID_CPU_COLLECTIVES and CUDA_VISIBLE_DEVICES.

Modes (the command to run comes after a bare `--`):
  --local N     spawn N processes on this machine (coordinator 127.0.0.1); one failing stops the others.
  (default)     run one process: explicit --num-processes/--process-id/--coordinator, else the SLURM task's
                SLURM_NTASKS / SLURM_PROCID / first host of the nodelist; the command replaces this process.
                This is what each `srun` task runs inside an sbatch script.
  --sbatch PATH write an sbatch script (`-` prints it) that srun's this launcher once per task.

    python -m launch.gpu --local 2 --cpu-collectives gloo -- anonvid train --config configs/x.py:smoke
    srun python -m launch.gpu -- anonvid train --config configs/pruning.py:vp_ucf101 --workdir /shared/run
    python -m launch.gpu --sbatch job.sh --nodes 4 --gpus-per-node 8 -- anonvid train --config ...

`--dry-run` prints each process's environment and command as one shell line and runs nothing.
"""
from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Mapping, Sequence

from anonvid import distributed

REPO_ROOT = Path(__file__).resolve().parent.parent


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface (the command to launch follows a bare `--`)."""
    p = argparse.ArgumentParser(
        prog="python -m launch.gpu",
        description="Launch a command as cooperating JAX processes: locally (--local N), as one SLURM task "
                    "(default), or write an sbatch script (--sbatch). The command follows a bare --.")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--local", type=int, metavar="N", help="spawn N processes on this machine")
    mode.add_argument("--sbatch", metavar="PATH", help="write an sbatch script to PATH ('-' prints it)")
    p.add_argument("--num-processes", type=int, help="total process count (default: SLURM_NTASKS)")
    p.add_argument("--process-id", type=int, help="this process's id (default: SLURM_PROCID)")
    p.add_argument("--coordinator", metavar="HOST:PORT",
                   help="process 0's address (default: 127.0.0.1 with --local, first SLURM node otherwise)")
    p.add_argument("--port", type=int, help="coordinator port when the host is derived (default: "
                                            f"{distributed.DEFAULT_PORT}, or per SLURM job id)")
    p.add_argument("--gpus-per-process", type=int, metavar="K",
                   help="set CUDA_VISIBLE_DEVICES to the K GPUs of this process's local rank "
                        "(local rank = index with --local, SLURM_LOCALID or --local-rank otherwise)")
    p.add_argument("--local-rank", type=int, help="index of this process on its host (default: SLURM_LOCALID or 0)")
    p.add_argument("--cpu-collectives", choices=distributed.CPU_COLLECTIVES,
                   help="cross-process collectives on the CPU backend (needed to test on CPUs)")
    p.add_argument("--dry-run", action="store_true", help="print environments and commands; run nothing")
    sb = p.add_argument_group("sbatch script")
    sb.add_argument("--nodes", type=int, default=1)
    sb.add_argument("--tasks-per-node", type=int, default=1,
                    help="processes per node (1 = one process owning all the node's GPUs, JAX's usual layout)")
    sb.add_argument("--gpus-per-node", type=int, help="GPUs to request per node")
    sb.add_argument("--cpus-per-task", type=int)
    sb.add_argument("--time", default="24:00:00", help="wall-clock limit")
    sb.add_argument("--partition")
    sb.add_argument("--account")
    sb.add_argument("--job-name", default="anonvid")
    sb.add_argument("--python", default=sys.executable, help="Python that runs this launcher in the job")
    return p


def _fail(parser: argparse.ArgumentParser, message: str) -> None:
    parser.error(message)  # prints usage + message to stderr, raises SystemExit(2)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parses and validates; bad input exits through `parser.error` with a message saying what to fix."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" in argv:
        i = argv.index("--")
        argv, command = argv[:i], argv[i + 1:]
    else:
        command = []
    args = parser.parse_args(argv)
    args.command = command
    if not command:
        _fail(parser, "give the command to launch after a bare --, e.g. -- anonvid train --config ...")
    if args.coordinator is not None:
        try:
            distributed.parse_coordinator(args.coordinator)
        except ValueError as err:
            _fail(parser, f"--coordinator: {err}")
    for name in ("local", "num_processes", "gpus_per_process", "nodes", "tasks_per_node", "gpus_per_node",
                 "cpus_per_task"):
        value = getattr(args, name)
        if value is not None and value < 1:
            _fail(parser, f"--{name.replace('_', '-')} must be >= 1, got {value}")
    for name in ("process_id", "local_rank"):
        value = getattr(args, name)
        if value is not None and value < 0:
            _fail(parser, f"--{name.replace('_', '-')} must be >= 0, got {value}")
    if args.port is not None and not 1 <= args.port <= 65535:
        _fail(parser, f"--port must be in 1..65535, got {args.port}")
    if args.local is not None and (args.num_processes is not None or args.process_id is not None):
        _fail(parser, "--local N sets the process count and ids itself; drop --num-processes/--process-id")
    if args.sbatch is not None and (args.num_processes is not None or args.process_id is not None
                                    or args.coordinator is not None):
        _fail(parser, "--sbatch takes the process layout from --nodes/--tasks-per-node; "
                      "drop --num-processes/--process-id/--coordinator")
    return args


def process_env(coordinator: str, num_processes: int, process_id: int, *, local_rank: int = 0,
                gpus_per_process: int | None = None, cpu_collectives: str | None = None) -> dict[str, str]:
    """The environment variables one process needs (to be added to the inherited environment).

    Args:
      coordinator: "host:port" of process 0.
      num_processes: total process count.
      process_id: this process's id.
      local_rank: this process's index on its host; picks its GPUs.
      gpus_per_process: if set, CUDA_VISIBLE_DEVICES = GPUs [local_rank * K, (local_rank + 1) * K).
      cpu_collectives: "gloo"/"mpi" for CPU runs, or None.

    Returns:
      Variable name → value.
    """
    env = {distributed.ENV_COORDINATOR: coordinator, distributed.ENV_NUM_PROCESSES: str(num_processes),
           distributed.ENV_PROCESS_ID: str(process_id)}
    if cpu_collectives:
        env[distributed.ENV_CPU_COLLECTIVES] = cpu_collectives
    if gpus_per_process:
        env["CUDA_VISIBLE_DEVICES"] = gpu_block(local_rank, gpus_per_process)
    return env


def gpu_block(local_rank: int, gpus_per_process: int) -> str:
    """CUDA_VISIBLE_DEVICES for one process: GPUs [local_rank * K, (local_rank + 1) * K), e.g. (1, 2) → "2,3"."""
    first = local_rank * gpus_per_process
    return ",".join(str(g) for g in range(first, first + gpus_per_process))


def shell_line(env: Mapping[str, str], command: Sequence[str]) -> str:
    """`VAR=value ... command args`, shell-quoted: what one process runs, pasteable into a shell."""
    return " ".join([f"{k}={shlex.quote(v)}" for k, v in env.items()] + [shlex.join(command)])


def local_plan(args: argparse.Namespace) -> list[dict[str, str]]:
    """Environments of the --local N processes."""
    coordinator = args.coordinator or f"127.0.0.1:{args.port or distributed.DEFAULT_PORT}"
    return [process_env(coordinator, args.local, i, local_rank=i, gpus_per_process=args.gpus_per_process,
                        cpu_collectives=args.cpu_collectives) for i in range(args.local)]


def task_plan(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, str]:
    """Environment of this one process, from explicit flags, else ANONVID_* or SLURM variables.

    Returns:
      The variables to add; empty for a single-process run (nothing to coordinate).

    Raises:
      ValueError: when the layout is incomplete or inconsistent (message from anonvid.distributed).
    """
    settings = distributed.resolve_distributed_settings(
        {"coordinator_address": args.coordinator, "num_processes": args.num_processes,
         "process_id": args.process_id, "coordinator_port": args.port}, environ,
        field_names={"coordinator_address": "--coordinator", "num_processes": "--num-processes",
                     "process_id": "--process-id", "coordinator_port": "--port"})
    if settings is None:  # single process: nothing to coordinate, but the device choices still apply
        env = {}
        if args.cpu_collectives:
            env[distributed.ENV_CPU_COLLECTIVES] = args.cpu_collectives
        if args.gpus_per_process:
            env["CUDA_VISIBLE_DEVICES"] = gpu_block(_local_rank(args, environ), args.gpus_per_process)
        return env
    return process_env(settings.coordinator_address, settings.num_processes, settings.process_id,
                       local_rank=_local_rank(args, environ), gpus_per_process=args.gpus_per_process,
                       cpu_collectives=args.cpu_collectives or settings.cpu_collectives)


def _local_rank(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    if args.local_rank is not None:
        return args.local_rank
    text = str(environ.get("SLURM_LOCALID", "0")).strip() or "0"
    if not text.isdigit():
        raise ValueError(f"SLURM_LOCALID={text!r} is not a non-negative integer")
    return int(text)


def sbatch_script(args: argparse.Namespace) -> str:
    """An sbatch script that runs this launcher once per task with srun."""
    lines = ["#!/bin/bash", f"#SBATCH --job-name={args.job_name}", f"#SBATCH --nodes={args.nodes}",
             f"#SBATCH --ntasks-per-node={args.tasks_per_node}", f"#SBATCH --time={args.time}",
             f"#SBATCH --output={args.job_name}-%j.out"]
    if args.gpus_per_node:
        lines.append(f"#SBATCH --gpus-per-node={args.gpus_per_node}")
    if args.cpus_per_task:
        lines.append(f"#SBATCH --cpus-per-task={args.cpus_per_task}")
    if args.partition:
        lines.append(f"#SBATCH --partition={args.partition}")
    if args.account:
        lines.append(f"#SBATCH --account={args.account}")
    inner = [args.python, "-m", "launch.gpu"]
    if args.port:
        inner += ["--port", str(args.port)]
    if args.gpus_per_process:
        inner += ["--gpus-per-process", str(args.gpus_per_process)]
    if args.cpu_collectives:
        inner += ["--cpu-collectives", args.cpu_collectives]
    inner += ["--", *args.command]
    lines += [
        "set -euo pipefail",
        # The launcher is imported as `launch.gpu`, so the tasks start from the repository root.
        f"cd {shlex.quote(str(REPO_ROOT))}",
        "# One task per process; each reads SLURM_NTASKS / SLURM_PROCID / the nodelist and execs the command.",
        "srun --kill-on-bad-exit=1 " + shlex.join(inner),
    ]
    return "\n".join(lines) + "\n"


def run_local(envs: Sequence[Mapping[str, str]], command: Sequence[str]) -> int:
    """Runs one process per environment; if one fails the others are stopped (they would wait forever).

    Returns:
      0 if all succeeded, else the first non-zero exit status seen.
    """
    procs = [subprocess.Popen(command, env={**os.environ, **env}) for env in envs]
    status = 0
    try:
        while procs:
            for p in list(procs):
                code = p.poll()
                if code is None:
                    continue
                procs.remove(p)
                if code != 0 and status == 0:
                    status = code
                    print(f"launch.gpu: process {p.pid} exited with {code}; stopping the others",
                          file=sys.stderr, flush=True)
                    for other in procs:
                        other.send_signal(signal.SIGTERM)
            time.sleep(0.1)
    except KeyboardInterrupt:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait()
        return 130
    return status


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Entry point; `environ` (default `os.environ`) is where SLURM variables are read from."""
    args = parse_args(argv)
    environ = os.environ if environ is None else environ
    if args.sbatch is not None:
        script = sbatch_script(args)
        if args.sbatch == "-" or args.dry_run:
            sys.stdout.write(script)
        else:
            Path(args.sbatch).write_text(script)
            print(f"wrote {args.sbatch}; submit it with: sbatch {shlex.quote(args.sbatch)}")
        return 0
    if args.local is not None:
        envs = local_plan(args)
        if args.dry_run:
            for env in envs:
                print(shell_line(env, args.command))
            return 0
        return run_local(envs, args.command)
    try:
        env = task_plan(args, environ)
    except ValueError as err:
        build_parser().error(str(err))
    if args.dry_run:
        print(shell_line(env, args.command))
        return 0
    sys.stdout.flush()
    try:
        # Replace this process so that signals from srun/SLURM (preemption) reach the command directly.
        os.execvpe(args.command[0], list(args.command), {**environ, **env})
    except FileNotFoundError:
        print(f"launch.gpu: command not found: {args.command[0]!r}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main())
