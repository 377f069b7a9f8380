"""Device mesh from config, logical-axis rules, and shardings for model state and batches.

Code names *logical* axes (`batch`, `time`, `tokens`, `embed`, `mlp`, `heads`, `conv_in`, `conv_out`); one rules
table (config `sharding.rules`) maps each to a mesh axis or to None (replicated). A parameter dimension that
does not divide evenly by its mesh axis, or a mesh axis already used by an earlier dimension of the same array,
is replicated instead: the rules are a wish, the shapes decide.

The mesh is built with `jax.make_mesh(..., axis_types=(AxisType.Auto,)*n)` (explicit axes are the default in
current JAX and would require sharding-in-types everywhere). Nothing here uses `pjit`, `pmap` or `with mesh:`.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

import jax
import numpy as np
import optax
from flax import nnx
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

# Data parallel over `data`; FSDP-/tensor-style parallelism over `model` for channel and MLP dimensions.
DEFAULT_RULES: tuple[tuple[str, str | None], ...] = (
    ("batch", "data"),
    ("conv_out", "model"),
    ("mlp", "model"),
    ("heads", "model"),
    ("conv_in", None),
    ("embed", None),
    ("time", None),
    ("tokens", None),
)


class ShardingError(ValueError):
    """A mesh or rules config that cannot be realised on the available devices."""


def make_mesh(axes: Sequence[Sequence[Any]], devices: Sequence[jax.Device] | None = None) -> Mesh:
    """Builds a device mesh from `(("data", -1), ("model", 1))`-style config; -1 fills the remaining devices.

    Args:
      axes: (name, size) pairs; at most one size may be -1.
      devices: devices to use (default: all global devices).

    Returns:
      A `Mesh` with `AxisType.Auto` axes.
    """
    devices = list(devices if devices is not None else jax.devices())
    names = tuple(str(a[0]) for a in axes)
    sizes = [int(a[1]) for a in axes]
    if len(set(names)) != len(names):
        raise ShardingError(f"mesh axis names must be distinct; got {names}")
    if sizes.count(-1) > 1:
        raise ShardingError(f"at most one mesh axis may be -1 (fill); got {list(zip(names, sizes))}")
    known = math.prod(s for s in sizes if s != -1)
    if known <= 0 or (len(devices) % known):
        raise ShardingError(
            f"mesh {list(zip(names, sizes))} does not fit {len(devices)} devices: the fixed axis sizes must "
            f"divide the device count")
    sizes = [len(devices) // known if s == -1 else s for s in sizes]
    if math.prod(sizes) != len(devices):
        raise ShardingError(
            f"mesh {list(zip(names, sizes))} uses {math.prod(sizes)} devices but {len(devices)} are available; "
            f"use -1 for one axis to fill")
    return jax.make_mesh(tuple(sizes), names, axis_types=(AxisType.Auto,) * len(names), devices=devices)


def _rules_dict(rules: Iterable[Sequence[Any]]) -> dict[str, str | None]:
    return {str(k): (None if v in (None, "None", "") else str(v)) for k, v in rules}


def logical_to_mesh_spec(logical: Sequence[str | None] | None, shape: Sequence[int], mesh: Mesh,
                         rules: Iterable[Sequence[Any]]) -> P:
    """Maps a logical axis tuple to a mesh `PartitionSpec` for an array of `shape`.

    Unknown logical names are an error (a typo would otherwise silently replicate). A dimension whose size is
    not divisible by its mesh axis size, or whose mesh axis is already taken, is replicated.
    """
    table = _rules_dict(rules)
    if not logical:
        return P()
    used, out = set(), []
    for name, size in zip(logical, shape):
        if name is None:
            out.append(None)
            continue
        if name not in table:
            raise ShardingError(f"logical axis {name!r} has no rule; known logical axes: {sorted(table)}")
        axis = table[name]
        if axis is None or axis in used or axis not in mesh.shape or size % mesh.shape[axis]:
            out.append(None)
            continue
        used.add(axis)
        out.append(axis)
    return P(*out)


def logical_partition_specs(state: nnx.State) -> Any:
    """Logical axis tuples of an NNX state (None for unannotated leaves), as a pytree shaped like `state`."""
    return nnx.get_partition_spec(state)


def state_shardings(state: Any, mesh: Mesh, rules: Iterable[Sequence[Any]]) -> Any:
    """`NamedSharding`s for every leaf of an NNX state (real or `jax.eval_shape`d) from its logical axes."""
    rules = tuple(rules)
    specs = nnx.get_partition_spec(state)
    leaves_specs = jax.tree.leaves(specs, is_leaf=lambda x: isinstance(x, P))
    leaves, treedef = jax.tree.flatten(state)
    if len(leaves_specs) != len(leaves):
        raise ShardingError("internal: partition specs do not line up with state leaves")
    out = [NamedSharding(mesh, logical_to_mesh_spec(tuple(s), np.shape(x), mesh, rules))
           for s, x in zip(leaves_specs, leaves)]
    return jax.tree.unflatten(treedef, out)


def optimizer_shardings(tx: optax.GradientTransformation, abstract_opt_state: Any, param_shardings: Any,
                        mesh: Mesh) -> Any:
    """Shardings of an optax state: param-shaped leaves (moments) follow their parameter; the rest replicate."""
    replicated = NamedSharding(mesh, P())
    return optax.tree_map_params(
        tx, lambda _, sharding: sharding, abstract_opt_state, param_shardings,
        transform_non_params=lambda _: replicated)


def batch_sharding(mesh: Mesh, rules: Iterable[Sequence[Any]]) -> NamedSharding:
    """Sharding of a batch array: the leading (batch) axis over the mesh axis that `batch` maps to."""
    axis = _rules_dict(rules).get("batch")
    if axis is not None and axis not in mesh.shape:
        raise ShardingError(f"rule batch -> {axis!r} names no axis of the mesh {dict(mesh.shape)}")
    return NamedSharding(mesh, P(axis))


def replicated(mesh: Mesh) -> NamedSharding:
    """A fully replicated sharding on `mesh`."""
    return NamedSharding(mesh, P())


def data_axis_size(mesh: Mesh, rules: Iterable[Sequence[Any]]) -> int:
    """How many ways the batch is split (global batch sizes must be a multiple of it)."""
    axis = _rules_dict(rules).get("batch")
    return int(mesh.shape[axis]) if axis else 1


def mesh_from_config(cfg: Mapping[str, Any]) -> Mesh:
    """Mesh from a config's `sharding.mesh` (default: all devices on `data`, `model` of size 1)."""
    axes = cfg.get("mesh", (("data", -1), ("model", 1)))
    return make_mesh(axes)
