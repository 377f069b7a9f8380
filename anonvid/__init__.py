"""anonvid: privacy-preserving video analytics in JAX/Flax.

Importing the package sets two process-wide switches, both for reasons measured here:
- Flax's eager variable sharding is off: models are built without an ambient mesh and placed by
  `anonvid.sharding` from their logical axis names.
- `jax_threefry_partitionable` is off: with jax 0.10.2 on CPU, compiling the partitionable threefry for each
  new parameter shape took ~9 s (0.45 s with it off; 2-core CPU, 2026-11-28), which made building a small model
  take ~30 s. Random values remain independent of how arrays are sharded; only the bit streams differ from
  the partitionable mode's.
"""
import jax as _jax
from flax import nnx as _nnx

_nnx.use_eager_sharding(False)
_jax.config.update("jax_threefry_partitionable", False)

__version__ = "0.1.0"
