"""Run anonvid on a Cloud TPU VM slice through `gcloud`: create, install, run, delete.

    python -m launch.tpu_vm --name av-v5e --zone us-west4-a --spot \\
        --config configs/pruning.py:vp_ucf101 --workdir gs://my-bucket/runs/pruning -- --config.pruner.epochs=40

Steps (pick with `--steps`, always executed in this order):
  create   `gcloud compute tpus tpu-vm create NAME --zone Z --accelerator-type T --version V [--spot]`
  install  put the code on every worker and install it into a Python 3.11 venv (`~/anonvid-venv`): either
           `git clone --repo-url` there, or (default) `git archive HEAD` of the local checkout, `scp` to all
           workers and unpack. Uncommitted changes are not shipped in the archive mode.
  run      `anonvid SUBCOMMAND --config ... --workdir ...` on all workers at once (`--worker=all`); JAX's
           own TPU detection supplies the process topology (ANONVID_DISTRIBUTED_AUTO=1, see
           anonvid/distributed.py).
  delete   `gcloud compute tpus tpu-vm delete NAME --zone Z --quiet`.

`--dry-run` prints every command, one per line, shell-quoted, and runs nothing. Only the standard library is
used so the launcher runs from any machine with gcloud.
"""
from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Sequence

STEPS = ("create", "install", "run", "delete")
DEFAULT_STEPS = "create,install,run"
REPO_ROOT = Path(__file__).resolve().parent.parent
# Keep in step with the jax pin in setup.py (tests/test_launch.py checks it).
DEFAULT_JAX_TPU = "jax[tpu]==0.10.2"
REMOTE_DIR = "anonvid"
REMOTE_VENV = "anonvid-venv"
# TPU node names: lower-case letters, digits and hyphens, starting with a letter (GCP resource naming).
_NAME_RE = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface (everything after a bare `--` is passed on to anonvid)."""
    p = argparse.ArgumentParser(
        prog="python -m launch.tpu_vm",
        description="Create a Cloud TPU VM, install anonvid on every worker, run it, optionally delete the VM. "
                    "Arguments after a bare -- are appended to the anonvid command.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--name", required=True, help="TPU VM name")
    p.add_argument("--zone", required=True, help="GCP zone, e.g. us-west4-a")
    p.add_argument("--project", help="GCP project (default: gcloud's configured project)")
    p.add_argument("--accelerator-type", default="v5litepod-16", help="TPU type and size")
    p.add_argument("--version", default="v2-alpha-tpuv5-lite", help="TPU VM runtime (software) version")
    p.add_argument("--spot", action="store_true", help="create a Spot (preemptible) TPU VM")
    p.add_argument("--steps", default=DEFAULT_STEPS,
                   help=f"comma list of steps from {','.join(STEPS)}")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--repo-url", help="git URL to clone on the workers instead of shipping the local checkout")
    src.add_argument("--source", default=str(REPO_ROOT),
                     help="local git checkout whose HEAD is archived and copied to the workers")
    p.add_argument("--ref", default="HEAD", help="git ref to check out (or to archive from --source)")
    p.add_argument("--python", default="python3.11", help="Python used on the workers to create the venv")
    p.add_argument("--jax-tpu", default=DEFAULT_JAX_TPU, help="pip requirement that brings the TPU jaxlib")
    p.add_argument("--subcommand", default="train", help="anonvid subcommand to run")
    p.add_argument("--config", help="anonvid config, e.g. configs/pruning.py:vp_ucf101 (needed by the run step)")
    p.add_argument("--workdir", help="output directory shared by all workers, gs://... (needed by the run step)")
    p.add_argument("--allow-local-workdir", action="store_true",
                   help="accept a workdir that is not gs:// (only sensible on a shared filesystem mount)")
    p.add_argument("--detach", action="store_true",
                   help="run under nohup on the workers (log in ~/anonvid/run.log) so that ssh may disconnect")
    p.add_argument("--dry-run", action="store_true", help="print the commands and run nothing")
    return p


def _split_passthrough(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    argv = list(argv)
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1:]
    return argv, []


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parses and validates the arguments; bad input exits through `parser.error` with a message."""
    parser = build_parser()
    own, extra = _split_passthrough(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(own)
    args.extra = extra
    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = [s for s in steps if s not in STEPS]
    if unknown or not steps:
        parser.error(f"--steps: unknown or empty step list {args.steps!r}; choose from {','.join(STEPS)}")
    args.steps = [s for s in STEPS if s in steps]  # canonical order, whatever order was typed
    if not _NAME_RE.fullmatch(args.name):
        parser.error(f"--name {args.name!r}: use lower-case letters, digits and hyphens, starting with a letter "
                     "(at most 63 characters)")
    if not args.zone.strip():
        parser.error("--zone must not be empty, e.g. --zone us-west4-a")
    if "run" in args.steps:
        if not args.config:
            parser.error("the run step needs --config, e.g. --config configs/pruning.py:vp_ucf101")
        if not args.workdir:
            parser.error("the run step needs --workdir, e.g. --workdir gs://my-bucket/runs/x")
        if not args.workdir.startswith("gs://") and not args.allow_local_workdir:
            parser.error(f"--workdir {args.workdir!r} is not gs://: every worker would write its own local copy. "
                         "Use a GCS path, or --allow-local-workdir for a shared mount")
    if "install" in args.steps and not args.repo_url and not (Path(args.source) / ".git").exists():
        parser.error(f"--source {args.source!r} is not a git checkout; give one or use --repo-url")
    return args


def _gcloud(args: argparse.Namespace, *words: str) -> list[str]:
    cmd = ["gcloud", "compute", "tpus", "tpu-vm", *words, "--zone", args.zone]
    if args.project:
        cmd += ["--project", args.project]
    return cmd


def _ssh_all(args: argparse.Namespace, remote: str) -> list[str]:
    return _gcloud(args, "ssh", args.name) + ["--worker=all", "--command", remote]


def install_script(args: argparse.Namespace) -> str:
    """The shell script each worker runs to get the code and install it into ~/anonvid-venv."""
    py = shlex.quote(args.python)
    lines = [
        "set -euo pipefail",
        # TPU VM images ship an older default python; setup.py needs 3.11.
        f"command -v {py} >/dev/null || (sudo apt-get update -q && "
        f"sudo apt-get install -y -q {py} {py}-venv)",
    ]
    if args.repo_url:
        lines += [
            f"rm -rf ~/{REMOTE_DIR}",
            f"git clone {shlex.quote(args.repo_url)} ~/{REMOTE_DIR}",
            f"git -C ~/{REMOTE_DIR} checkout {shlex.quote(args.ref)}",
        ]
    else:
        lines += [
            f"rm -rf ~/{REMOTE_DIR} && mkdir -p ~/{REMOTE_DIR}",
            f"tar -xzf ~/{REMOTE_DIR}.tar.gz -C ~/{REMOTE_DIR}",
        ]
    lines += [
        f"{py} -m venv ~/{REMOTE_VENV}",
        f"~/{REMOTE_VENV}/bin/pip install -q --upgrade pip",
        f"~/{REMOTE_VENV}/bin/pip install -q -e ~/{REMOTE_DIR} {shlex.quote(args.jax_tpu)}",
    ]
    return "; ".join(lines)


def run_script(args: argparse.Namespace) -> str:
    """The shell command each worker runs for the anonvid job."""
    anonvid = [f"~/{REMOTE_VENV}/bin/anonvid", args.subcommand, "--config", args.config,
               "--workdir", args.workdir, *args.extra]
    # `~` must stay unquoted for the remote shell to expand it; everything else is quoted.
    cmd = anonvid[0] + " " + shlex.join(anonvid[1:])
    if args.detach:
        return f"cd ~/{REMOTE_DIR} && ANONVID_DISTRIBUTED_AUTO=1 nohup {cmd} > run.log 2>&1 < /dev/null &"
    return f"cd ~/{REMOTE_DIR} && ANONVID_DISTRIBUTED_AUTO=1 {cmd}"


def build_commands(args: argparse.Namespace) -> list[list[str]]:
    """Every command of the selected steps, in order, as argv lists."""
    cmds: list[list[str]] = []
    if "create" in args.steps:
        cmd = _gcloud(args, "create", args.name) + ["--accelerator-type", args.accelerator_type,
                                                    "--version", args.version]
        if args.spot:
            cmd.append("--spot")
        cmds.append(cmd)
    if "install" in args.steps:
        if not args.repo_url:
            archive = f"/tmp/anonvid-{args.name}.tar.gz"
            cmds.append(["git", "-C", args.source, "archive", "--format=tar.gz", "--output", archive, args.ref])
            cmds.append(_gcloud(args, "scp", archive, f"{args.name}:{REMOTE_DIR}.tar.gz") + ["--worker=all"])
        cmds.append(_ssh_all(args, install_script(args)))
    if "run" in args.steps:
        cmds.append(_ssh_all(args, run_script(args)))
    if "delete" in args.steps:
        cmds.append(_gcloud(args, "delete", args.name) + ["--quiet"])
    return cmds


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: prints (`--dry-run`) or runs the commands; returns the exit status."""
    args = parse_args(argv)
    cmds = build_commands(args)
    if args.dry_run:
        for cmd in cmds:
            print(shlex.join(cmd))
        return 0
    for cmd in cmds:
        print(f"+ {shlex.join(cmd)}", file=sys.stderr, flush=True)
        try:
            code = subprocess.run(cmd, check=False).returncode
        except FileNotFoundError:
            print(f"error: {cmd[0]!r} not found; install the Google Cloud SDK (gcloud) and git", file=sys.stderr)
            return 127
        if code != 0:
            print(f"error: command failed with exit status {code}: {shlex.join(cmd)}", file=sys.stderr)
            if "create" in args.steps or "delete" in args.steps:
                print(f"the TPU VM may still exist; delete it with: {shlex.join(_gcloud(args, 'delete', args.name))}"
                      " --quiet", file=sys.stderr)
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
