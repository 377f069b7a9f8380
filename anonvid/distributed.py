"""Multi-process setup: find out who this process is, then call `jax.distributed.initialize` once.

A multi-host run needs four facts per process: the coordinator's `host:port`, the number of processes, this
process's id and (optionally) which local accelerators it owns. They are looked up field by field, the first
source that has a field winning:

1. explicit config fields — `config.distributed.<field>` if the config has a `distributed` block, otherwise
   top-level fields of the same names: `coordinator_address`, `num_processes`, `process_id`,
   `local_device_ids`, `coordinator_port`, `cpu_collectives`, `auto_detect`, `initialization_timeout`.
   A field is *unset* when it is missing, None, "" or (for the integers) negative; `num_processes` and
   `coordinator_port` of 0 are unset too, so configs can carry typed placeholders.
2. anonvid's environment variables, which `launch/gpu.py` sets: `ANONVID_COORDINATOR` (host:port),
   `ANONVID_NUM_PROCESSES`, `ANONVID_PROCESS_ID`, `ANONVID_LOCAL_DEVICE_IDS` ("0,1"),
   `ANONVID_COORDINATOR_PORT`, `ANONVID_CPU_COLLECTIVES`, `ANONVID_DISTRIBUTED_AUTO` ("1").
3. SLURM, when `SLURM_PROCID` is set (i.e. inside an `srun` task): process count from `SLURM_STEP_NUM_TASKS`
   (the step's count) or else `SLURM_NTASKS`, process id from `SLURM_PROCID`, coordinator = first host of
   `SLURM_STEP_NODELIST` (or `SLURM_JOB_NODELIST`) and a port chosen per job (see `slurm_port`).

`auto_detect` (or `ANONVID_DISTRIBUTED_AUTO=1`) hands the unset fields to JAX's own cluster detection
(`jax.distributed.initialize()` with no arguments) — the way to go on Cloud TPU VMs, where the TPU runtime
knows the topology; `launch/tpu_vm.py` sets it.

`resolve_distributed_settings` is the pure part (testable without JAX); `initialize_from_config` applies it.
Only a run with more than one process (or `auto_detect`) initialises anything; a single process stays local.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import re
from typing import Any, Mapping

__all__ = [
    "DistributedSettings",
    "DEFAULT_PORT",
    "CONFIG_FIELDS",
    "parse_coordinator",
    "expand_nodelist",
    "first_host",
    "slurm_port",
    "resolve_distributed_settings",
    "distributed_fields",
    "initialize_from_config",
]

log = logging.getLogger(__name__)

ENV_COORDINATOR = "ANONVID_COORDINATOR"
ENV_NUM_PROCESSES = "ANONVID_NUM_PROCESSES"
ENV_PROCESS_ID = "ANONVID_PROCESS_ID"
ENV_LOCAL_DEVICE_IDS = "ANONVID_LOCAL_DEVICE_IDS"
ENV_COORDINATOR_PORT = "ANONVID_COORDINATOR_PORT"
ENV_CPU_COLLECTIVES = "ANONVID_CPU_COLLECTIVES"
ENV_AUTO = "ANONVID_DISTRIBUTED_AUTO"

# Coordinator port when nothing names one. Above Linux's default ephemeral range (32768-60999), so that an
# outgoing connection on the coordinator host is unlikely to be holding it already.
DEFAULT_PORT = 62000
# SLURM jobs spread over [DEFAULT_PORT, DEFAULT_PORT + _SLURM_PORT_SPAN) by job id, so two jobs that share a
# first node rarely collide.
_SLURM_PORT_SPAN = 3000

CPU_COLLECTIVES = ("gloo", "mpi")

CONFIG_FIELDS = ("coordinator_address", "num_processes", "process_id", "local_device_ids", "coordinator_port",
                 "cpu_collectives", "auto_detect", "initialization_timeout")


@dataclasses.dataclass(frozen=True)
class DistributedSettings:
    """What `jax.distributed.initialize` gets, and where each value came from.

    Attributes:
      coordinator_address: "host:port" of process 0's coordinator service (None only with `auto_detect`).
      num_processes: total process count (None only with `auto_detect`).
      process_id: this process's id in [0, num_processes) (None only with `auto_detect`).
      local_device_ids: the local accelerators this process owns, or None for all visible ones.
      cpu_collectives: "gloo" or "mpi" to set `jax_cpu_collectives_implementation` first, or None.
      auto_detect: let JAX detect whatever is None here (Cloud TPU, GKE, SLURM, ...).
      initialization_timeout: seconds to wait for all processes to join, or None for JAX's default.
      sources: field name → "config" | "env" | "slurm", for logs and error messages.
    """

    coordinator_address: str | None
    num_processes: int | None
    process_id: int | None
    local_device_ids: tuple[int, ...] | None = None
    cpu_collectives: str | None = None
    auto_detect: bool = False
    initialization_timeout: int | None = None
    sources: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def initialize_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `jax.distributed.initialize` (unset ones left out for JAX to detect)."""
        kwargs: dict[str, Any] = {
            "coordinator_address": self.coordinator_address,
            "num_processes": self.num_processes,
            "process_id": self.process_id,
            "local_device_ids": list(self.local_device_ids) if self.local_device_ids is not None else None,
            "initialization_timeout": self.initialization_timeout,
        }
        return {k: v for k, v in kwargs.items() if v is not None}


# ----------------------------------------------------------------------------------------------------------
# Parsers.


def parse_coordinator(text: str) -> tuple[str, int]:
    """Splits "host:port" (or "[ipv6]:port") into (host, port).

    Raises:
      ValueError: naming the expected form when the host is empty or the port is not an integer in 1..65535.
    """
    text = str(text).strip()
    match = re.fullmatch(r"\[(?P<v6>[^\]]+)\]:(?P<port>[^:]*)|(?P<host>[^:\[\]\s]+):(?P<port2>[^:]*)", text)
    if not match:
        raise ValueError(f"coordinator {text!r} is not host:port (e.g. 10.0.0.1:62000 or [::1]:62000)")
    host = match.group("v6") or match.group("host")
    port_text = match.group("port") if match.group("v6") else match.group("port2")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"coordinator {text!r}: port {port_text!r} must be an integer in 1..65535")
    return host, int(port_text)


def _split_top_level(text: str) -> list[str]:
    """Splits on commas that are not inside brackets."""
    items, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "[":
            depth += 1
            if depth > 1:
                raise ValueError(f"SLURM nodelist {text!r}: nested brackets")
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise ValueError(f"SLURM nodelist {text!r}: ']' without '['")
        elif ch == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    if depth:
        raise ValueError(f"SLURM nodelist {text!r}: '[' without ']'")
    items.append(text[start:])
    return items


def _expand_range_list(body: str, nodelist: str) -> list[str]:
    """Expands the inside of one bracket, e.g. "001-004,007" → ["001", ..., "004", "007"]."""
    out = []
    for part in body.split(","):
        lo, sep, hi = part.partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise ValueError(f"SLURM nodelist {nodelist!r}: bad range {part!r} (expected N or N-M)")
        if not sep:
            out.append(lo)
            continue
        if int(hi) < int(lo):
            raise ValueError(f"SLURM nodelist {nodelist!r}: range {part!r} runs backwards")
        # SLURM keeps the zero padding of the lower bound: node[08-10] → node08, node09, node10.
        width = len(lo)
        out.extend(str(i).zfill(width) for i in range(int(lo), int(hi) + 1))
    return out


def expand_nodelist(nodelist: str) -> list[str]:
    """Expands a SLURM hostlist expression into host names, in order.

    Supports comma lists, bracketed ranges with zero padding and several bracket groups per name:
    "gpu[001-002,007],cpu01" → ["gpu001", "gpu002", "gpu007", "cpu01"];
    "r[1-2]-n[01-02]" → ["r1-n01", "r1-n02", "r2-n01", "r2-n02"].

    Raises:
      ValueError: for an empty list, unbalanced brackets or a malformed range.
    """
    text = str(nodelist).strip()
    if not text:
        raise ValueError("SLURM nodelist is empty; is this running inside a SLURM allocation?")
    hosts: list[str] = []
    for item in _split_top_level(text):
        if not item:
            raise ValueError(f"SLURM nodelist {text!r}: empty host name between commas")
        names = [""]
        for match in re.finditer(r"([^\[]*)(?:\[([^\]]*)\])?", item):
            literal, body = match.group(1), match.group(2)
            choices = _expand_range_list(body, text) if body is not None else [""]
            names = [n + literal + c for n in names for c in choices]
        hosts.extend(names)
    return hosts


def first_host(nodelist: str) -> str:
    """The first host of a SLURM hostlist expression, "gpu[001-004,007],cpu01" → "gpu001".

    Only the first item is expanded, so a huge list costs nothing.
    """
    text = str(nodelist).strip()
    if not text:
        raise ValueError("SLURM nodelist is empty; is this running inside a SLURM allocation?")
    return expand_nodelist(_split_top_level(text)[0])[0]


def slurm_port(environ: Mapping[str, str]) -> int:
    """The coordinator port for a SLURM job: DEFAULT_PORT + SLURM_JOB_ID mod 3000 (DEFAULT_PORT without a job id).

    Every task of a job computes the same port without talking to the others.
    """
    job = str(environ.get("SLURM_JOB_ID", "")).strip()
    return DEFAULT_PORT + int(job) % _SLURM_PORT_SPAN if job.isdigit() else DEFAULT_PORT


def _is_unset(value: Any, allow_zero: bool = True) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value < 0 or (value == 0 and not allow_zero)
    if isinstance(value, (tuple, list)):
        return len(value) == 0
    return False


def _to_int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{what} must be an integer, got {value!r}")
    try:
        return int(str(value).strip()) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be an integer, got {value!r}") from None


def _to_bool(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("", "0", "false", "no", "off"):
        return False
    raise ValueError(f"{what} must be a boolean (1/0, true/false), got {value!r}")


def _to_device_ids(value: Any, what: str) -> tuple[int, ...]:
    if isinstance(value, str):
        parts = [p for p in value.replace(" ", "").split(",") if p]
    elif isinstance(value, int) and not isinstance(value, bool):
        parts = [value]
    else:
        parts = list(value)
    ids = tuple(_to_int(p, what) for p in parts)
    if any(i < 0 for i in ids) or len(set(ids)) != len(ids):
        raise ValueError(f"{what} must be distinct non-negative device ids, got {value!r}")
    return ids


# ----------------------------------------------------------------------------------------------------------
# Resolution.


def resolve_distributed_settings(config_fields: Mapping[str, Any], environ: Mapping[str, str], *,
                                 field_names: Mapping[str, str] | None = None) -> DistributedSettings | None:
    """Works out the multi-process settings from config fields, anonvid env vars and SLURM, in that order.

    Args:
      config_fields: explicit values, keys from `CONFIG_FIELDS` (others are ignored); unset values (None, "",
        negative, or 0 for `num_processes`/`coordinator_port`) fall through to the environment.
      environ: the environment to read, e.g. `os.environ`.
      field_names: how error messages name the explicit fields (default "config field <name>"); a launcher
        passes its flag names, e.g. {"num_processes": "--num-processes"}.

    Returns:
      The settings for a multi-process run (num_processes > 1, or `auto_detect`), or None for a
      single-process run, which needs no initialisation.

    Raises:
      ValueError: when the sources are incomplete or inconsistent (e.g. a process id but no process count,
        a process id out of range, a malformed coordinator); the message names the field and its source.
    """
    cfg = {k: v for k, v in dict(config_fields).items() if k in CONFIG_FIELDS}
    for key in ("num_processes", "coordinator_port"):
        if key in cfg and _is_unset(cfg[key], allow_zero=False):
            del cfg[key]
    cfg = {k: v for k, v in cfg.items() if not _is_unset(v)}

    env = {k: str(environ[v]) for k, v in (
        ("coordinator_address", ENV_COORDINATOR), ("num_processes", ENV_NUM_PROCESSES),
        ("process_id", ENV_PROCESS_ID), ("local_device_ids", ENV_LOCAL_DEVICE_IDS),
        ("coordinator_port", ENV_COORDINATOR_PORT), ("cpu_collectives", ENV_CPU_COLLECTIVES),
        ("auto_detect", ENV_AUTO)) if str(environ.get(v, "")).strip()}

    slurm: dict[str, Any] = {}
    if str(environ.get("SLURM_PROCID", "")).strip():
        slurm["process_id"] = environ["SLURM_PROCID"]
        count = environ.get("SLURM_STEP_NUM_TASKS") or environ.get("SLURM_NTASKS")
        if count:
            slurm["num_processes"] = count
        nodelist = environ.get("SLURM_STEP_NODELIST") or environ.get("SLURM_JOB_NODELIST")
        if nodelist:
            slurm["_host"] = first_host(nodelist)

    sources: dict[str, str] = {}

    def pick(field: str, allow_slurm: bool = True) -> Any:
        for name, source in (("config", cfg), ("env", env)) + ((("slurm", slurm),) if allow_slurm else ()):
            if field in source:
                sources[field] = name
                return source[field]
        return None

    def label(field: str) -> str:
        src = sources.get(field)
        explicit = (field_names or {}).get(field, f"config field {field}")
        where = {"config": explicit, "slurm": "SLURM"}.get(src or "", "")
        if src == "env":
            where = {"coordinator_address": ENV_COORDINATOR, "num_processes": ENV_NUM_PROCESSES,
                     "process_id": ENV_PROCESS_ID, "local_device_ids": ENV_LOCAL_DEVICE_IDS,
                     "coordinator_port": ENV_COORDINATOR_PORT, "cpu_collectives": ENV_CPU_COLLECTIVES,
                     "auto_detect": ENV_AUTO}[field]
        return f"{field} (from {where})" if where else field

    auto = pick("auto_detect", allow_slurm=False)
    auto = _to_bool(auto, label("auto_detect")) if auto is not None else False

    raw_n = pick("num_processes")
    num_processes = _to_int(raw_n, label("num_processes")) if raw_n is not None else None
    if num_processes is not None and num_processes < 1:
        raise ValueError(f"{label('num_processes')} must be >= 1, got {num_processes}")
    raw_id = pick("process_id")
    process_id = _to_int(raw_id, label("process_id")) if raw_id is not None else None

    coordinator = pick("coordinator_address", allow_slurm=False)
    if coordinator is None and "_host" in slurm:
        raw_port = pick("coordinator_port", allow_slurm=False)
        port = _to_int(raw_port, label("coordinator_port")) if raw_port is not None else slurm_port(environ)
        coordinator = f"{slurm['_host']}:{port}"
        sources["coordinator_address"] = "slurm"
    if coordinator is not None:
        try:
            host, port = parse_coordinator(coordinator)
        except ValueError as err:
            raise ValueError(f"{label('coordinator_address')}: {err}") from None
        coordinator = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    raw_dev = pick("local_device_ids", allow_slurm=False)
    local_device_ids = _to_device_ids(raw_dev, label("local_device_ids")) if raw_dev is not None else None
    collectives = pick("cpu_collectives", allow_slurm=False)
    if collectives is not None:
        collectives = str(collectives).strip().lower()
        if collectives not in CPU_COLLECTIVES:
            raise ValueError(f"{label('cpu_collectives')} must be one of {CPU_COLLECTIVES}, got {collectives!r}")
    raw_timeout = pick("initialization_timeout", allow_slurm=False)
    timeout = _to_int(raw_timeout, label("initialization_timeout")) if raw_timeout is not None else None

    if num_processes is not None and process_id is not None and not 0 <= process_id < num_processes:
        raise ValueError(f"{label('process_id')} = {process_id} is outside [0, {num_processes}) "
                         f"for {label('num_processes')} = {num_processes}")

    settings = DistributedSettings(
        coordinator_address=coordinator, num_processes=num_processes, process_id=process_id,
        local_device_ids=local_device_ids, cpu_collectives=collectives, auto_detect=auto,
        initialization_timeout=timeout, sources=dict(sources))
    if auto:
        return settings
    if num_processes is None:
        explicit = [label(f) for f in ("coordinator_address", "process_id") if sources.get(f) in ("config", "env")]
        if explicit:
            raise ValueError(f"{' and '.join(explicit)} given but no process count: set num_processes "
                             f"(config) or {ENV_NUM_PROCESSES}, or auto_detect to let JAX find it")
        return None
    if num_processes == 1:
        return None
    missing = [f for f, v in (("coordinator_address", coordinator), ("process_id", process_id)) if v is None]
    if missing:
        raise ValueError(
            f"{label('num_processes')} = {num_processes} but {' and '.join(missing)} unknown: set them "
            f"explicitly (config fields or launcher flags), or {ENV_COORDINATOR}/{ENV_PROCESS_ID}, or launch "
            "with srun (see launch/gpu.py)")
    return settings


def distributed_fields(cfg_or_dict: Any) -> dict[str, Any]:
    """Extracts the distributed fields from a config: its `distributed` block if it has one, else top level.

    Args:
      cfg_or_dict: an `ml_collections.ConfigDict`, a dict, or None (no fields).

    Returns:
      A plain dict holding only keys from `CONFIG_FIELDS`.
    """
    if cfg_or_dict is None:
        return {}
    if hasattr(cfg_or_dict, "to_dict"):
        cfg_or_dict = cfg_or_dict.to_dict()
    if not isinstance(cfg_or_dict, Mapping):
        raise TypeError(f"expected a ConfigDict or a mapping, got {type(cfg_or_dict).__name__}")
    block = cfg_or_dict.get("distributed", cfg_or_dict)
    if block is None:
        return {}
    if not isinstance(block, Mapping):
        raise TypeError(f"config field distributed must be a mapping, got {type(block).__name__}")
    return {k: block[k] for k in CONFIG_FIELDS if k in block}


def initialize_from_config(cfg_or_dict: Any = None,
                           environ: Mapping[str, str] | None = None) -> DistributedSettings | None:
    """Initialises `jax.distributed` when the config or environment describes a multi-process run.

    Call it first thing in a process, before any JAX computation touches a device.

    Args:
      cfg_or_dict: config carrying the fields (see the module docstring), or None to use the environment only.
      environ: environment to read (defaults to `os.environ`).

    Returns:
      The settings used, or None when this is a single-process run and nothing was initialised. When
      `jax.distributed` is already initialised, nothing is called again and the settings are returned.
    """
    settings = resolve_distributed_settings(distributed_fields(cfg_or_dict),
                                            os.environ if environ is None else environ)
    if settings is None:
        return None
    import jax  # Deferred: resolving settings (and the launchers that use it) must not need JAX.

    if jax.distributed.is_initialized():
        log.info("jax.distributed already initialised; leaving it as it is")
        return settings
    if settings.cpu_collectives:
        # Cross-process collectives on the CPU backend need an implementation chosen before the backend
        # starts; it is harmless on GPU/TPU, where the accelerator's own collectives are used.
        jax.config.update("jax_cpu_collectives_implementation", settings.cpu_collectives)
    log.info("jax.distributed.initialize(%s) [sources: %s]", settings.initialize_kwargs(), settings.sources)
    jax.distributed.initialize(**settings.initialize_kwargs())
    return settings
