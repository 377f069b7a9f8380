"""Test-session setup: one persistent XLA compilation cache per test session.

Many tests train small models whose programs recur (the same shapes in several tests and in every grid
configuration); a session-local cache reuses their compiled executables without carrying state between runs.
Worker subprocesses inherit it through the environment.
"""
import os
import tempfile

# pytest-xdist workers of one run share one cache (the run's id names it); a plain run gets its own folder.
_RUN = os.environ.get("PYTEST_XDIST_TESTRUNUID")
_CACHE = (os.path.join(tempfile.gettempdir(), f"anonvid-xla-cache-{_RUN}") if _RUN
          else tempfile.mkdtemp(prefix="anonvid-xla-cache-"))
os.makedirs(_CACHE, exist_ok=True)
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", _CACHE)

from anonvid import compile_cache  # noqa: E402  (after the environment is set)

compile_cache.enable()
