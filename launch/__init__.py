"""Launchers that start anonvid on many machines: `launch.tpu_vm` (Cloud TPU VMs through gcloud) and
`launch.gpu` (GPU hosts: local multi-process, one process per SLURM task, or an sbatch script).

Both are plain standard-library Python, runnable as `python -m launch.tpu_vm ...` / `python -m launch.gpu ...`
from the repository root, and both print exactly what they would run with `--dry-run`. Beside them,
`launch.aot_compile` (which needs JAX) compiles the pruner's train step for a mesh ahead of time and reports
whether it fits in a chip's memory. See launch/README.md.
"""
