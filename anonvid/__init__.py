"""anonvid: privacy-preserving video analytics in JAX/Flax.

Importing the package switches off Flax's eager variable sharding: models are built abstractly
(`nnx.eval_shape`) and placed by `anonvid.sharding` from logical axis names, so a module must be constructible
without an ambient mesh.
"""
from flax import nnx as _nnx

_nnx.use_eager_sharding(False)

__version__ = "0.1.0"
