"""Checkpoints: save and restore a training run's state with Orbax (the only module that imports orbax).

One checkpoint per step holds two items, written together by one `ocp.CheckpointManager`:

- ``state``: a pytree of arrays (params, optimizer state, step counter, PRNG key data, ...), written with
  ``StandardSave`` (tensorstore/OCDBT) and restored with ``StandardRestore`` into an *abstract, sharded*
  target: every leaf is a `jax.ShapeDtypeStruct` whose ``.sharding`` says where the restored array goes, so a
  checkpoint written on one mesh can be read onto another (different device count or partitioning).
- ``meta``: a small JSON-able dict (data-loader position, config snapshot, ...), written with ``JsonSave``.
  JSON semantics apply: tuples come back as lists and dict keys as strings.

On-disk layout (managed by Orbax): ``<directory>/<step>/{state,meta}/...``; the newest ``keep`` steps are kept.

Crash safety. Orbax writes a step into ``<step>.orbax-checkpoint-tmp`` and renames it to ``<step>`` only once
every file is written, so a process killed mid-save leaves the previous steps intact and the next run resumes
from the last finished one. Orbax 0.12.8 lists only finished step directories (leftover ``*.orbax-checkpoint-tmp``
directories are ignored by `latest_step`, `all_steps` and `restore`) and removes a leftover tmp directory when
the same step is saved again. Leftovers are *not* swept at start-up: another job (an evaluator) reading the same
directory could be holding a live tmp directory of the trainer.

Damaged checkpoints. If a finished step cannot be read (files truncated or deleted by hand, a disk fault),
`Checkpointer.restore` raises `CheckpointError` naming the directory and step and listing the other steps.
It never deletes or rewrites anything. By default there is **no silent fallback** to an older step: resuming
from an older step than the caller asked for repeats training and must be a visible decision. Pass
``fallback=True`` to walk back to the newest step that restores (each skipped step is logged as a warning);
`Checkpointer.restored_step` then tells which step was used.

PRNG keys. Store a key as its raw data, ``key_to_data(key)`` (a ``uint32`` array, `jax.random.key_data`), inside
``state`` and rebuild it after restore with ``key_from_data(data, impl)`` (`jax.random.wrap_key_data`); record
the impl name (e.g. ``str(jax.random.key_impl(key))``) in ``meta`` if it is not the default. Orbax 0.12.8 can
also write typed key arrays directly, but plain ``uint32`` data is independent of Orbax's key support and of the
default PRNG impl at restore time.

Multi-host: every process must call `save`, `restore` and `close` (Orbax synchronises them); one job only may
write a directory, other jobs should open it with ``read_only=True``.
"""
from __future__ import annotations

import json
import logging
import operator
import os
import tempfile
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

__all__ = ["CheckpointError", "Checkpointer", "abstract_like", "key_from_data", "key_to_data"]

_log = logging.getLogger(__name__)

_STATE = "state"
_META = "meta"
# Orbax's marker for an unfinished step directory (orbax.checkpoint._src.path.atomicity_types.TMP_DIR_SUFFIX).
_TMP_SUFFIX = ".orbax-checkpoint-tmp"
# Tensorstore errors embed the whole JSON spec; the head says what went wrong.
_MAX_CAUSE_CHARS = 300


class CheckpointError(RuntimeError):
    """A checkpoint directory cannot be used as asked; the message names the directory and the fix."""


def key_to_data(key: jax.Array) -> jax.Array:
    """Returns a typed PRNG key (or key array) as its raw ``uint32`` data, ready to be stored in ``state``.

    Args:
        key: a typed key from `jax.random.key` (legacy raw ``uint32`` keys are returned unchanged).

    Returns:
        A ``uint32`` array of shape ``key.shape + impl_data_shape`` (``(..., 2)`` for threefry).
    """
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(key)
    if key.dtype != np.uint32:
        raise ValueError(f"key_to_data expects a typed PRNG key or uint32 key data, got dtype {key.dtype}.")
    return key


def key_from_data(data: jax.Array, impl: str | None = None) -> jax.Array:
    """Rebuilds a typed PRNG key from data made by `key_to_data`.

    Args:
        data: ``uint32`` key data (e.g. restored from a checkpoint).
        impl: PRNG implementation name (``"threefry2x32"``, ``"rbg"``, ...); None uses JAX's default.

    Returns:
        A typed key array of shape ``data.shape[:-1]`` (``data.shape[:-2]`` for rbg-style impls).
    """
    return jax.random.wrap_key_data(data, impl=impl)


def abstract_like(state: Any) -> Any:
    """Returns the abstract restore target of a concrete state: each leaf a `jax.ShapeDtypeStruct` with the
    leaf's shape, dtype and sharding.

    Args:
        state: a pytree of `jax.Array` (or of `jax.ShapeDtypeStruct` with shardings).

    Returns:
        The same tree with `jax.ShapeDtypeStruct` leaves, usable as ``abstract_state`` in `Checkpointer.restore`.
    """
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), state)


def _is_remote(path: str) -> bool:
    return "://" in path


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if len(text) > _MAX_CAUSE_CHARS:
        text = text[:_MAX_CAUSE_CHARS] + " ..."
    return f"{type(exc).__name__}: {text}"


def _path_str(path: tuple) -> str:
    return jax.tree_util.keystr(path) or "<root>"


def _key_names(path: tuple) -> tuple[str, ...]:
    """A keypath as plain names, so that a live tree (namedtuples, nnx.State) and Orbax's metadata tree (nested
    dicts and lists) name a leaf the same way."""
    names = []
    for entry in path:
        for attr in ("key", "idx", "name"):
            if hasattr(entry, attr):
                names.append(str(getattr(entry, attr)))
                break
        else:
            names.append(str(entry))
    return tuple(names)


class Checkpointer:
    """Keeps the last ``keep`` checkpoints of one run in ``directory`` and restores them onto any mesh.

    Example::

        with Checkpointer(workdir / "ckpt", keep=3, save_interval_steps=100) as ckpt:
            if ckpt.latest_step() is not None:
                state, meta = ckpt.restore(abstract_like_state)   # abstract, sharded target
            for step in range(start, steps):
                ...
                ckpt.save(step, state, {"data_position": pos}, force=step == steps - 1)

    Args:
        directory: the run's checkpoint directory; created if missing. Local paths are checked for being a
            writable directory; remote paths (``gs://...``) are passed to Orbax as they are.
        keep: how many of the newest steps to keep (>= 1), or None to keep all.
        save_interval_steps: `save` writes only steps that are multiples of this (>= 1) unless ``force=True``;
            the first save of an empty directory is always written.
        async_save: if True, `save` returns once the arrays are copied off the device and files are written in a
            background thread; call `wait_until_finished` (or `close`) before relying on them on disk.
        read_only: open an existing directory for restoring only (evaluators, a read-only mount); `save` raises.
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        *,
        keep: int | None = 3,
        save_interval_steps: int = 1,
        async_save: bool = False,
        read_only: bool = False,
    ):
        if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 1):
            raise ValueError(f"keep must be an int >= 1 (or None to keep every step), got {keep!r}.")
        if isinstance(save_interval_steps, bool) or not isinstance(save_interval_steps, int) or save_interval_steps < 1:
            raise ValueError(f"save_interval_steps must be an int >= 1, got {save_interval_steps!r}.")
        directory = os.fspath(directory)
        if not _is_remote(directory):
            directory = os.path.abspath(directory)
            self._check_local_directory(directory, read_only)
        self._directory = directory
        self._read_only = read_only
        self._restored_step: int | None = None

        registry = ocp.handlers.DefaultCheckpointHandlerRegistry()
        registry.add(_STATE, ocp.args.StandardSave)
        registry.add(_STATE, ocp.args.StandardRestore)
        registry.add(_META, ocp.args.JsonSave)
        registry.add(_META, ocp.args.JsonRestore)
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep,
            save_interval_steps=save_interval_steps,
            enable_async_checkpointing=async_save,
            read_only=read_only,
            # The directory was created (and checked) above; remote roots are created by Orbax.
            create=_is_remote(directory) and not read_only,
            # Not swept here: another job may own a live tmp directory (see the module docstring).
            cleanup_tmp_directories=False,
        )
        try:
            self._mgr = ocp.CheckpointManager(directory, options=options, handler_registry=registry)
        except OSError as e:
            raise CheckpointError(f"Cannot open checkpoint directory {directory}: {_short(e)}.") from e

    @staticmethod
    def _check_local_directory(directory: str, read_only: bool) -> None:
        if os.path.exists(directory) and not os.path.isdir(directory):
            raise CheckpointError(
                f"Checkpoint directory {directory} is a file, not a directory. Pass a directory path "
                "(it is created if missing) or move the file away."
            )
        if read_only:
            if not os.path.isdir(directory):
                raise CheckpointError(
                    f"Checkpoint directory {directory} does not exist (opened read_only=True). "
                    "Check the path, or open it with read_only=False to start a new run there."
                )
            return
        try:
            os.makedirs(directory, exist_ok=True)
            # A real write, not os.access: root passes os.access on read-only mounts.
            with tempfile.NamedTemporaryFile(dir=directory, prefix=".anonvid-write-probe-"):
                pass
        except OSError as e:
            raise CheckpointError(
                f"Checkpoint directory {directory} cannot be created or written ({_short(e)}). Pass a writable "
                "directory, fix its permissions, or open it with read_only=True to restore only."
            ) from e

    # ----------------------------------------------------------------------------------------------- queries

    @property
    def directory(self) -> str:
        """The checkpoint directory (absolute for local paths)."""
        return self._directory

    @property
    def restored_step(self) -> int | None:
        """The step the last successful `restore` read (None before any); differs from the requested step only
        with ``fallback=True``."""
        return self._restored_step

    def all_steps(self) -> list[int]:
        """Returns the finished steps in the directory, oldest first (unfinished tmp directories excluded).

        With ``async_save=True`` a step whose background write is still running is already listed.
        """
        return sorted(int(s) for s in self._mgr.all_steps())

    def latest_step(self) -> int | None:
        """Returns the newest finished step, or None if the directory holds no checkpoint."""
        steps = self.all_steps()
        return steps[-1] if steps else None

    def should_save(self, step: int) -> bool:
        """Returns whether `save` (without ``force``) would write ``step``: it is a multiple of
        ``save_interval_steps`` (or the first checkpoint) and newer than the latest step."""
        return not self._read_only and bool(self._mgr.should_save(self._check_step(step)))

    def _step_path(self, step: int) -> str:
        return f"{self._directory.rstrip('/')}/{step}"

    def _leftover_tmp_dirs(self) -> list[str]:
        if _is_remote(self._directory) or not os.path.isdir(self._directory):
            return []
        return sorted(n for n in os.listdir(self._directory) if _TMP_SUFFIX in n)

    @staticmethod
    def _check_step(step: Any) -> int:
        if isinstance(step, bool):
            raise ValueError(f"step must be a non-negative integer, got {step!r}.")
        try:
            step = operator.index(step)
        except TypeError:
            if isinstance(step, (np.ndarray, jax.Array)) and step.shape == () and np.issubdtype(step.dtype, np.integer):
                step = int(step)
            else:
                raise ValueError(f"step must be a non-negative integer, got {step!r}.") from None
        if step < 0:
            raise ValueError(f"step must be a non-negative integer, got {step}.")
        return step

    # -------------------------------------------------------------------------------------------------- save

    def save(self, step: int, state: Any, meta: Mapping[str, Any] | None = None, *, force: bool = False) -> bool:
        """Saves ``state`` and ``meta`` as checkpoint ``step`` if the save interval allows it.

        A step that already exists is never rewritten: it is skipped with a logged warning (a resumed run that
        saves its restored step again must not clobber it). After a successful save the oldest steps beyond
        ``keep`` are deleted.

        Args:
            step: the training step (non-negative int); names the step directory.
            state: a pytree whose leaves are arrays (`jax.Array`, sharded or not, or numpy arrays).
            meta: a small JSON-able dict (data-loader position, config snapshot); None means ``{}``.
            force: write even if ``step`` is not a multiple of ``save_interval_steps`` or is older than the
                latest step (still never over an existing step).

        Returns:
            True if the step was written (or, with ``async_save``, started), False if skipped.

        Raises:
            CheckpointError: opened read-only, or the write failed.
            ValueError: a non-array leaf in ``state`` or a ``meta`` that JSON cannot encode.
        """
        step = self._check_step(step)
        if self._read_only:
            raise CheckpointError(
                f"Cannot save step {step}: checkpoint directory {self._directory} was opened with read_only=True."
            )
        meta = self._check_meta(meta)
        self._check_state(state)
        if step in self.all_steps():
            _log.warning(
                "Checkpoint step %d already exists in %s; not saving it again (the existing step is kept).",
                step, self._directory,
            )
            return False
        args = ocp.args.Composite(**{_STATE: ocp.args.StandardSave(state), _META: ocp.args.JsonSave(meta)})
        try:
            return bool(self._mgr.save(step, args=args, force=force))
        except ocp.checkpoint_manager.StepAlreadyExistsError:
            # Lost a race with another writer (or an unfinished async save of the same step).
            _log.warning("Checkpoint step %d already exists in %s; not saving it again.", step, self._directory)
            return False
        except OSError as e:
            raise CheckpointError(
                f"Saving step {step} to {self._directory} failed ({_short(e)}). Earlier steps are untouched; "
                "check free space and permissions."
            ) from e

    @staticmethod
    def _check_meta(meta: Mapping[str, Any] | None) -> dict:
        if meta is None:
            return {}
        if not isinstance(meta, Mapping):
            raise ValueError(f"meta must be a dict of JSON-able values, got {type(meta).__name__}.")
        meta = dict(meta)
        try:
            json.dumps(meta)
        except (TypeError, ValueError) as e:
            raise ValueError(
                f"meta must be JSON-able ({e}); convert arrays with .tolist() / int() and keep large data in state."
            ) from e
        return meta

    @staticmethod
    def _check_state(state: Any) -> None:
        leaves = jax.tree_util.tree_leaves_with_path(state)
        if not leaves:
            raise ValueError("state holds no arrays; pass the pytree of arrays to checkpoint.")
        for path, leaf in leaves:
            if not isinstance(leaf, (jax.Array, np.ndarray, np.generic)):
                raise ValueError(
                    f"state leaf {_path_str(path)} is a {type(leaf).__name__}, not an array; wrap numbers with "
                    "jnp.asarray(...) and put non-array data in meta."
                )

    # ----------------------------------------------------------------------------------------------- restore

    def restore(
        self, abstract_state: Any, step: int | None = None, *, fallback: bool = False
    ) -> tuple[Any, dict]:
        """Restores a checkpoint into the abstract, sharded target ``abstract_state``.

        Every restored array has exactly the shape, dtype (Orbax casts if the stored dtype differs) and
        sharding of its target leaf, whatever mesh the checkpoint was written on.

        Args:
            abstract_state: the pytree of the saved state with `jax.ShapeDtypeStruct` leaves whose ``.sharding``
                is set (e.g. a `NamedSharding` on the current mesh); `jax.Array` leaves are accepted too (their
                shape, dtype and sharding are used). See `abstract_like`.
            step: the step to restore; None means the latest.
            fallback: if the requested (or latest) step is damaged, restore the newest older step that reads
                cleanly instead of raising; skipped steps are logged. `restored_step` tells which step was used.

        Returns:
            ``(state, meta)``: the restored pytree (same structure as ``abstract_state``) and the meta dict.

        Raises:
            CheckpointError: no checkpoint, unknown step, a target that does not match the checkpoint, or a
                damaged step (with ``fallback=True``: every candidate step damaged). Nothing is deleted.
            ValueError: a leaf of ``abstract_state`` without a sharding.
        """
        target = self._check_target(abstract_state)
        self.wait_until_finished()
        self._mgr.reload()  # the directory may have changed since this object listed it
        steps = self.all_steps()
        if not steps:
            tmp = self._leftover_tmp_dirs()
            extra = f" (only unfinished saves: {', '.join(tmp)})" if tmp else ""
            raise CheckpointError(
                f"No finished checkpoint in {self._directory}{extra}. Check the directory, or start from "
                "scratch when latest_step() is None."
            )
        if step is None:
            step = steps[-1]
        else:
            step = self._check_step(step)
            if step not in steps:
                raise CheckpointError(
                    f"Checkpoint step {step} is not in {self._directory}; available steps: {steps}."
                )
        candidates = [s for s in reversed(steps) if s <= step] if fallback else [step]
        failures: list[str] = []
        for s in candidates:
            try:
                state, meta = self._restore_step(s, target)
            except _DamagedStep as e:
                if not fallback:
                    raise CheckpointError(self._damaged_message(s, e.cause, steps)) from e.cause
                _log.warning("Checkpoint step %d in %s is unreadable (%s); trying an older step.",
                             s, self._directory, _short(e.cause))
                failures.append(f"step {s}: {_short(e.cause)}")
                continue
            if s != step:
                _log.warning("Restored checkpoint step %d from %s instead of the requested step %d (fallback=True).",
                             s, self._directory, step)
            self._restored_step = s
            return state, meta
        raise CheckpointError(
            f"No readable checkpoint at or before step {step} in {self._directory}; every candidate failed:\n  "
            + "\n  ".join(failures)
            + "\nThe directory was left as it is; restore from a copy or start a new run elsewhere."
        )

    @staticmethod
    def _check_target(abstract_state: Any) -> Any:
        leaves = jax.tree_util.tree_leaves_with_path(abstract_state)
        if not leaves:
            raise ValueError("abstract_state holds no leaves; pass the abstract pytree of the saved state.")
        for path, leaf in leaves:
            if getattr(leaf, "sharding", None) is None or not hasattr(leaf, "shape") or not hasattr(leaf, "dtype"):
                raise ValueError(
                    f"abstract_state leaf {_path_str(path)} ({type(leaf).__name__}) has no sharding; every leaf must "
                    "be jax.ShapeDtypeStruct(shape, dtype, sharding=NamedSharding(mesh, spec)) so the restored array "
                    "lands where it is needed (abstract_like(state) builds one from concrete arrays)."
                )
        return abstract_like(abstract_state)

    def _restore_step(self, step: int, target: Any) -> tuple[Any, dict]:
        args = ocp.args.Composite(**{_STATE: ocp.args.StandardRestore(target), _META: ocp.args.JsonRestore()})
        try:
            out = self._mgr.restore(step, args=args)
            state, meta = out[_STATE], out[_META]
            if not isinstance(meta, dict):
                raise ValueError(f"meta item holds {type(meta).__name__}, not a dict")
        except Exception as e:  # noqa: BLE001 -- Orbax/tensorstore raise many types; classify below.
            mismatch = self._target_mismatch(step, target)
            if mismatch:
                raise CheckpointError(
                    f"Checkpoint step {step} in {self._directory} does not match abstract_state: {mismatch}. "
                    "Build abstract_state from the same model/optimizer config that wrote the checkpoint."
                ) from e
            raise _DamagedStep(e) from e
        # Orbax honours the target shardings; make it a guarantee rather than an assumption.
        state = jax.tree.map(
            lambda x, t: x if x.sharding == t.sharding else jax.device_put(x, t.sharding), state, target
        )
        return state, meta

    def _target_mismatch(self, step: int, target: Any) -> str | None:
        """Describes how ``target`` differs from the stored tree, or None if it matches or the stored metadata is
        itself unreadable (then the step is damaged)."""
        try:
            stored = self._mgr.item_metadata(step)[_STATE].tree
            stored_leaves = jax.tree_util.tree_leaves_with_path(stored)
        except Exception:  # noqa: BLE001 -- unreadable metadata means a damaged step, not a mismatch.
            return None
        stored_shapes = {_key_names(p): getattr(m, "shape", None) for p, m in stored_leaves}
        wanted = {_key_names(p): t for p, t in jax.tree_util.tree_leaves_with_path(target)}
        missing = sorted("/".join(k) for k in wanted.keys() - stored_shapes.keys())
        unexpected = sorted("/".join(k) for k in stored_shapes.keys() - wanted.keys())
        problems = []
        if missing:
            problems.append(f"not in the checkpoint: {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        if unexpected:
            problems.append(f"in the checkpoint but not in the target: {unexpected[:5]}"
                            f"{' ...' if len(unexpected) > 5 else ''}")
        for k in sorted(wanted.keys() & stored_shapes.keys()):
            t, shape = wanted[k], stored_shapes[k]
            # Typed PRNG keys are stored as their data: compare plain arrays only.
            if shape is not None and not jax.dtypes.issubdtype(t.dtype, jax.dtypes.prng_key) \
                    and tuple(shape) != tuple(t.shape):
                problems.append(
                    f"{'/'.join(k)} has shape {tuple(shape)} in the checkpoint, {tuple(t.shape)} in the target"
                )
                break
        return "; ".join(problems) or None

    def _damaged_message(self, step: int, cause: BaseException, steps: list[int]) -> str:
        others = [s for s in steps if s != step]
        older = [s for s in others if s < step]
        hint = (
            f"To resume from an earlier checkpoint pass step={older[-1]} (or fallback=True to take the newest "
            f"readable one); " if older else "No older step exists to fall back to; "
        )
        return (
            f"Checkpoint step {step} in {self._directory} is damaged or incomplete and cannot be restored "
            f"({_short(cause)}). Other steps: {others or 'none'}. {hint}"
            f"to drop the damaged step, delete {self._step_path(step)} (or call Checkpointer.delete({step})). "
            "Nothing was deleted or overwritten."
        )

    # --------------------------------------------------------------------------------------------- lifecycle

    def delete(self, step: int) -> None:
        """Deletes checkpoint ``step`` (e.g. a damaged one) from the directory.

        Args:
            step: an existing step.

        Raises:
            CheckpointError: opened read-only, or no such step.
        """
        step = self._check_step(step)
        if self._read_only:
            raise CheckpointError(f"Cannot delete step {step}: {self._directory} was opened with read_only=True.")
        self.wait_until_finished()
        self._mgr.reload()
        if step not in self.all_steps():
            raise CheckpointError(f"Checkpoint step {step} is not in {self._directory}; steps: {self.all_steps()}.")
        self._mgr.delete(step)

    def wait_until_finished(self) -> None:
        """Blocks until a background (``async_save=True``) save has finished; a no-op for synchronous saves.

        Raises:
            CheckpointError: the background save failed (that step is then not finished on disk).
        """
        try:
            self._mgr.wait_until_finished()
        except Exception as e:  # noqa: BLE001 -- surface background failures with the directory named.
            raise CheckpointError(
                f"A background save to {self._directory} failed ({_short(e)}); earlier steps are untouched."
            ) from e

    def close(self) -> None:
        """Waits for pending saves and releases Orbax's threads. Idempotent."""
        if getattr(self, "_closed", False):
            return
        self._closed = True
        try:
            self.wait_until_finished()
        finally:
            self._mgr.close()

    def __enter__(self) -> Checkpointer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Checkpointer({self._directory!r}, steps={self.all_steps()})"


class _DamagedStep(Exception):
    """Internal: a step's files could not be read (as opposed to a caller/target mismatch)."""

    def __init__(self, cause: BaseException):
        super().__init__(str(cause))
        self.cause = cause
