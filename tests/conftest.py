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

# The longest test files start first, so that with two xdist workers (`--dist loadfile`) the many short files fill
# in around them instead of one long file starting last and running alone at the end. (`make test` passes
# `--no-loadscope-reorder`: by default xdist reorders files by their number of tests, which put the notebook's two
# long tests last.)
_LONGEST_FIRST = ("test_notebook.py", "test_sharding.py", "test_resume.py", "test_grid.py", "test_penalty.py",
                  "test_pruner.py", "test_pruning_experiment.py", "test_vad.py")


def pytest_collection_modifyitems(session, config, items):
    def rank(item):
        name = os.path.basename(str(item.fspath))
        return _LONGEST_FIRST.index(name) if name in _LONGEST_FIRST else len(_LONGEST_FIRST)

    items.sort(key=rank)  # stable: the order inside each file and among the other files is kept
