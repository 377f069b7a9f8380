"""An allow-listing unpickler for label files that are numpy pickles (STPrivacy's VP-UCF101/VP-HMDB51 labels).

`pickle.load` runs whatever callables a pickle names, so a label file from the internet is code. This loader
resolves only the globals that numpy array reconstruction needs and refuses every other one *before* it is
called, so a malicious pickle raises `UnsafePickleError` and runs nothing.
"""
from __future__ import annotations

import io
import os
import pickle
from typing import Any

# (module, name) pairs that plain numpy array pickles reference. `numpy.core` is NumPy 1.x's name of
# `numpy._core` (NumPy 2.x keeps it as a deprecated alias); files written by either must load. Protocol <= 2
# pickles rebuild the arrays' raw bytes with `_codecs.encode(str, "latin1")`, a pure function.
ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset({
    ("_codecs", "encode"),
    # Protocol 5 pickles of contiguous arrays: `_frombuffer(bytes, dtype, shape, order)`, a pure constructor.
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
})


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle referenced a global outside the allow-list (it could run code if loaded naively)."""


class _AllowListUnpickler(pickle.Unpickler):
    def __init__(self, file, *, source: str):
        super().__init__(file)
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED_GLOBALS:
            raise UnsafePickleError(
                f"{self._source} references {module}.{name}, which is not a numpy array-reconstruction global; "
                f"refusing to load it (it could run code). Allowed: {sorted('.'.join(g) for g in ALLOWED_GLOBALS)}."
                " Re-export the labels as plain arrays, or inspect the file with pickletools.dis first.")
        if module.startswith("numpy.core."):
            # the same function, without NumPy 2's deprecation warning
            module = "numpy._core." + module[len("numpy.core."):]
        return super().find_class(module, name)

    def persistent_load(self, pid):  # persistent ids would be resolved by us: nothing is allowed
        raise UnsafePickleError(f"{self._source} uses persistent ids ({pid!r}); refusing to load it")


def load_numpy_pickle(path_or_bytes: str | os.PathLike | bytes) -> Any:
    """Loads a pickle that may contain only builtin containers/scalars and numpy arrays/dtypes.

    Args:
      path_or_bytes: a file path, or the pickle's bytes.

    Returns:
      The unpickled object.

    Raises:
      UnsafePickleError: the pickle references any other global (nothing of it is executed).
      FileNotFoundError: the path does not exist.
    """
    if isinstance(path_or_bytes, (bytes, bytearray)):
        data, source = bytes(path_or_bytes), "pickle"
    else:
        source = str(path_or_bytes)
        if not os.path.isfile(source):
            raise FileNotFoundError(f"label pickle not found: {source}")
        with open(source, "rb") as f:
            data = f.read()
    return _AllowListUnpickler(io.BytesIO(data), source=source).load()
