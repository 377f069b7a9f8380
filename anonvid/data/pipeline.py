"""grain input pipeline: random-access sources -> shuffled, repeated, batched global jax.Arrays.

The pipeline is a grain `MapDataset` — random access all the way down — so the data position is a single
integer (the number of batches consumed) and resuming is exact: a resumed run sees the batches that an
uninterrupted one would.

    flat   = source.shuffle(seed).repeat(num_epochs)[.map(transform)]   # element q of the whole run
    global batch b = flat[b*G : (b+1)*G]                                 # G = global_batch_size

Multi-host: each process reads only the rows of every global batch that its devices hold (with a batch
sharding over a 'data' axis that spans processes, the contiguous slice [p*G/P, (p+1)*G/P)), using grain's
own batch + strided slice, and the global array is assembled with `jax.make_array_from_process_local_data`.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import grain
import jax
import numpy as np


class ArraySource:
    """A grain random-access source over a dict of equally long numpy arrays.

    Args:
      arrays: name -> array; all arrays share the leading (example) dimension. An array-like that is not a
        numpy array but has `shape` and indexing (`anonvid.data.real.ClipColumn`: clips read lazily from a
        prepared dataset) is kept as it is, so examples are read only when indexed.
      name: what the data is (used in error messages, e.g. "split 'test'").
    """

    def __init__(self, arrays: Mapping[str, np.ndarray], *, name: str = "source"):
        if not arrays:
            raise ValueError(f"{name} has no arrays; pass a dict name -> array")
        self._arrays = {k: v if _lazy(v) else np.asarray(v) for k, v in arrays.items()}
        lengths = {k: (v.shape[0] if v.ndim else None) for k, v in self._arrays.items()}
        if None in lengths.values() or len(set(lengths.values())) != 1:
            raise ValueError(f"{name}: arrays must share their leading dimension; got lengths {lengths}")
        self._len = next(iter(lengths.values()))
        self.name = name

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        index = _checked_index(index, self._len, self.name)
        return {k: v[index] for k, v in self._arrays.items()}

    def __repr__(self) -> str:
        shapes = {k: v.shape for k, v in self._arrays.items()}
        return f"ArraySource(name={self.name!r}, len={self._len}, shapes={shapes})"


class ZipSource:
    """Pairs random-access sources of different lengths: element i merges element i mod len(s) of every source.

    Its length is the longest source's, so one epoch shows every element of the longest source once and cycles
    the shorter ones (e.g. action clips paired with privacy images). Keys must not collide.
    """

    def __init__(self, *sources, name: str = "zipped source"):
        if not sources or any(len(s) == 0 for s in sources):
            raise ValueError(f"{name}: every zipped source must be non-empty; got lengths {[len(s) for s in sources]}")
        self._sources = sources
        self._len = max(len(s) for s in sources)
        self.name = name

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        index = _checked_index(index, self._len, self.name)
        out: dict[str, np.ndarray] = {}
        for s in self._sources:
            item = s[index % len(s)]
            clash = set(item) & set(out)
            if clash:
                raise ValueError(f"{self.name}: key(s) {sorted(clash)} appear in more than one zipped source")
            out.update(item)
        return out


def _checked_index(index: int, length: int, name: str) -> int:
    """`index` as an int, or IndexError when it is outside [-length, length)."""
    index = int(index)
    if not -length <= index < length:
        raise IndexError(f"index {index} out of range for {name} of length {length}")
    return index


def _lazy(v) -> bool:
    return not isinstance(v, np.ndarray) and hasattr(v, "shape") and hasattr(v, "ndim") and hasattr(v, "__getitem__") \
        and not hasattr(v, "device")  # jax arrays are in memory already


def make_batches(source, *, global_batch_size: int, seed: int, shuffle: bool = True, num_epochs: int | None = None,
                 drop_remainder: bool = True, transform: Callable[[Any], Any] | None = None,
                 worker_count: int = 0, sharding: jax.sharding.NamedSharding | None = None,
                 name: str | None = None) -> BatchIterator:
    """Builds the batch iterator over a random-access source (see `BatchIterator`).

    Args:
      source: random-access source (`ArraySource`, a tfds data source, ...): len() and [i] -> dict of arrays.
      global_batch_size: examples per global batch (across all processes).
      seed: shuffle seed (each epoch is shuffled differently, deterministically).
      shuffle: whether to shuffle.
      num_epochs: passes over the data; None repeats forever.
      drop_remainder: drop the last partial global batch. If False, it is padded to full size by repeating
        examples and every batch carries a bool ``valid`` array (False on padding) — static shapes for jit.
      transform: optional per-example function (example dict -> example dict), applied after shuffling.
      worker_count: grain worker processes (0 = read in this process).
      sharding: batch sharding of the global arrays (leading axis over e.g. mesh axis 'data'); None = the
        default device (single process only).
      name: what the data is, for error messages (e.g. "split 'test'").

    Returns:
      A `BatchIterator`.
    """
    return BatchIterator(source, global_batch_size=global_batch_size, seed=seed, shuffle=shuffle,
                         num_epochs=num_epochs, drop_remainder=drop_remainder, transform=transform,
                         worker_count=worker_count, sharding=sharding, name=name)


class BatchIterator:
    """Iterates dicts of global jax.Arrays, sharded along the batch axis; resumable with get/set_state.

    Args: as `make_batches`.
    """

    def __init__(self, source, *, global_batch_size: int, seed: int, shuffle: bool = True,
                 num_epochs: int | None = None, drop_remainder: bool = True,
                 transform: Callable[[Any], Any] | None = None, worker_count: int = 0,
                 sharding: jax.sharding.NamedSharding | None = None, name: str | None = None):
        name = name or getattr(source, "name", None) or type(source).__name__
        n = len(source)
        if n == 0:
            raise ValueError(f"{name} is empty: nothing to batch (check the split name and the data size)")
        g = int(global_batch_size)
        if g <= 0:
            raise ValueError(f"global_batch_size={global_batch_size} must be positive")
        if num_epochs is not None and int(num_epochs) <= 0:
            raise ValueError(f"num_epochs={num_epochs} must be positive or None (repeat forever)")
        if int(worker_count) < 0:
            raise ValueError(f"worker_count={worker_count} must be >= 0")
        nproc = jax.process_count()
        if g % nproc:
            raise ValueError(f"global_batch_size={g} is not divisible by the number of processes {nproc}; "
                             f"use a multiple of {nproc}")
        if sharding is None and nproc > 1:
            raise ValueError("a batch sharding is required with several processes (pass sharding=...)")
        self._sharding = sharding
        self._rows = _local_rows(sharding, g)  # (first row, row count) of this process in a global batch

        flat = grain.MapDataset.source(source)
        if shuffle:
            flat = flat.shuffle(seed=int(seed))
        flat = flat.repeat(None if num_epochs is None else int(num_epochs))
        if transform is not None:
            flat = flat.map(transform)
        if num_epochs is None:
            num_batches = None
            if not drop_remainder:  # nothing to pad, but keep the batch structure the same
                flat = flat.map(lambda x: {**x, "valid": np.bool_(True)})
        elif drop_remainder:
            num_batches = len(flat) // g
            if num_batches == 0:
                raise ValueError(f"{name} has {n} examples x {num_epochs} epochs, fewer than one global batch "
                                 f"of {g}; lower global_batch_size or pass drop_remainder=False")
            flat = flat[: num_batches * g]
        else:
            num_batches = -(-len(flat) // g)
            real = len(flat)
            # Pad by wrapping round (repeat(2) indexes modulo the length); padding rows are marked invalid.
            flat = flat.repeat(2, reseed_each_epoch=False)[: num_batches * g]
            flat = flat.map_with_index(lambda i, x: {**x, "valid": np.bool_(i < real)})
        first, count = self._rows
        # Rows [first, first+count) of every global batch = every (g/count)-th block of `count` examples.
        self._local = flat.batch(count, drop_remainder=True)[first // count:: g // count]
        self._num_batches = num_batches
        self._workers = int(worker_count)
        self._config = {"global_batch_size": g, "seed": int(seed), "shuffle": bool(shuffle),
                        "num_epochs": num_epochs, "drop_remainder": bool(drop_remainder), "num_examples": n}
        self._step = 0
        self._it = None

    def __len__(self) -> int:
        """Number of global batches in the run (raises for an infinite iterator)."""
        if self._num_batches is None:
            raise TypeError("an iterator with num_epochs=None is infinite and has no length")
        return self._num_batches

    def __iter__(self) -> BatchIterator:
        return self

    def __next__(self) -> dict[str, jax.Array]:
        if self._num_batches is not None and self._step >= self._num_batches:
            raise StopIteration
        if self._workers == 0:
            local = self._local[self._step]
        else:
            if self._it is None:
                self._it = self._start_workers()
            local = next(self._it)
        self._step += 1
        return self._to_global(local)

    def get_state(self) -> dict:
        """Returns the data position (JSON-able): the next batch index plus the settings it is valid for."""
        return {"step": self._step, **self._config}

    def set_state(self, state: dict) -> None:
        """Moves to a position saved by `get_state` (with the same source and settings)."""
        for key, value in self._config.items():
            if key in state and state[key] != value:
                raise ValueError(f"data state was saved with {key}={state[key]!r} but this iterator has "
                                 f"{key}={value!r}; resume with the same data settings")
        step = int(state["step"])
        if step < 0 or (self._num_batches is not None and step > self._num_batches):
            raise ValueError(f"data state step={step} is outside this iterator's {self._num_batches} batches")
        self._step = step
        self._close_workers()

    def close(self) -> None:
        """Stops worker processes, if any."""
        self._close_workers()

    def _start_workers(self):
        _mark_flags_parsed()  # grain reads its absl flags in this process too when starting workers
        remaining = self._local[self._step:]
        options = grain.MultiprocessingOptions(num_workers=self._workers, per_worker_buffer_size=2)
        return iter(remaining.to_iter_dataset().mp_prefetch(options, worker_init_fn=_worker_init))

    def _close_workers(self) -> None:
        if self._it is not None and hasattr(self._it, "close"):
            self._it.close()
        self._it = None

    def _to_global(self, local: dict) -> dict[str, jax.Array]:
        if self._sharding is None:
            return jax.tree.map(jax.device_put, local)
        g = self._config["global_batch_size"]

        def put(x):
            x = np.asarray(x)
            spec = tuple(self._sharding.spec)[: x.ndim]
            leaf_sharding = jax.sharding.NamedSharding(self._sharding.mesh, jax.sharding.PartitionSpec(*spec))
            return jax.make_array_from_process_local_data(leaf_sharding, x, (g,) + x.shape[1:])

        return jax.tree.map(put, local)


def _local_rows(sharding: jax.sharding.NamedSharding | None, g: int) -> tuple[int, int]:
    """Rows [first, first + count) of a global batch that this process's devices hold."""
    if sharding is None:
        return 0, g
    if not isinstance(sharding, jax.sharding.NamedSharding):
        raise TypeError(f"sharding must be a jax.sharding.NamedSharding, got {type(sharding).__name__}")
    spec = tuple(sharding.spec)
    axes = spec[0] if spec else None
    axes = () if axes is None else (axes if isinstance(axes, tuple) else (axes,))
    shards = int(np.prod([sharding.mesh.shape[a] for a in axes])) if axes else 1
    if g % shards:
        raise ValueError(f"global_batch_size={g} is not divisible by the {shards} shards of the batch axis "
                         f"(mesh axes {axes}); use a multiple of {shards}")
    lead = jax.sharding.NamedSharding(sharding.mesh, jax.sharding.PartitionSpec(spec[0] if spec else None))
    index_map = lead.addressable_devices_indices_map((g,))
    starts = sorted({idx[0].indices(g)[:2] for idx in index_map.values()})
    first, last = starts[0][0], max(stop for _, stop in starts)
    covered = sum(stop - start for start, stop in starts)
    count = last - first
    if covered != count or g % count or first % count:
        raise ValueError(f"this process's devices hold rows {starts} of the global batch: not one aligned "
                         "contiguous block; order the mesh so that each process owns a contiguous batch slice")
    return first, count


def _worker_init(worker_index: int, worker_count: int) -> None:
    """grain worker start-up: workers are fresh processes whose absl flags are unparsed."""
    del worker_index, worker_count
    _mark_flags_parsed()


def _mark_flags_parsed() -> None:
    """Marks absl flags parsed (with their defaults) unless a program parsed them already.

    grain reads its own absl flags when it starts worker processes and in the workers; outside an
    `absl.app.run` program they are unparsed and grain raises UnparsedFlagAccessError.
    """
    from absl import flags  # a dependency of jax and grain

    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()
