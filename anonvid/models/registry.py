"""Model registry: config names → constructors, so configs name models instead of code choosing by if-ladder."""
from __future__ import annotations

from typing import Any, Callable, Mapping

import jax.numpy as jnp
from flax import nnx

from anonvid.models.contrastive import ContrastiveEncoder
from anonvid.models.dual_vit import DualViT
from anonvid.models.r3d import R3D
from anonvid.models.resnet import ResNet2D
from anonvid.models.stae import STAE
from anonvid.models.unet import UNetPlusPlus

_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def _r3d(num_outputs: int, kw: Mapping[str, Any], dtype, rngs: nnx.Rngs) -> nnx.Module:
    return R3D(num_outputs, dtype=dtype, rngs=rngs, **kw)


def _resnet2d(num_outputs: int, kw: Mapping[str, Any], dtype, rngs: nnx.Rngs) -> nnx.Module:
    return ResNet2D(num_outputs, dtype=dtype, rngs=rngs, **kw)


def _stae(num_outputs: int, kw: Mapping[str, Any], dtype, rngs: nnx.Rngs) -> nnx.Module:
    del num_outputs  # an autoencoder: its output is the reconstructed clip, not logits
    return STAE(dtype=dtype, rngs=rngs, **kw)


def _dual_vit(num_outputs: int, kw: Mapping[str, Any], dtype, rngs: nnx.Rngs) -> nnx.Module:
    return DualViT(num_outputs, dtype=dtype, rngs=rngs, **kw)  # num_outputs = action classes


def _unetpp(num_outputs: int, kw: Mapping[str, Any], dtype, rngs: nnx.Rngs) -> nnx.Module:
    return UNetPlusPlus(num_outputs, dtype=dtype, rngs=rngs, **kw)  # num_outputs = output channels (3)


def _contrastive(num_outputs: int, kw: Mapping[str, Any], dtype, rngs: nnx.Rngs) -> nnx.Module:
    return ContrastiveEncoder(num_outputs, dtype=dtype, rngs=rngs, **kw)  # num_outputs = embedding size


MODELS: dict[str, Callable[..., nnx.Module]] = {"contrastive": _contrastive, "dual_vit": _dual_vit, "r3d": _r3d,
                                                "resnet2d": _resnet2d, "stae": _stae, "unetpp": _unetpp}


def register_model(name: str, constructor: Callable[..., nnx.Module]) -> None:
    """Adds a constructor `(num_outputs, kwargs, dtype, rngs) -> nnx.Module` under `name`."""
    MODELS[name] = constructor


def build_model(name: str, num_outputs: int, *, kwargs: Mapping[str, Any] | None = None,
                dtype: str = "float32", seed: int = 0) -> nnx.Module:
    """Builds a registered model.

    Args:
      name: registry name (see `MODELS`).
      num_outputs: classes or attributes of the head.
      kwargs: constructor keyword arguments (widths, depth, ...), e.g. a config's `model.kwargs`.
      dtype: computation dtype name, "float32" or "bfloat16" (parameters stay float32).
      seed: parameter initialisation seed.

    Returns:
      The constructed NNX module.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}")
    if dtype not in _DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; use one of {sorted(_DTYPES)}")
    kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in dict(kwargs or {}).items()}
    ctor = MODELS[name]
    try:
        # One compiled initialiser for all parameters: eager initialisation compiles a random-number kernel per
        # parameter shape, which dominated model construction time on CPU.
        return nnx.jit(lambda: ctor(num_outputs, kw, _DTYPES[dtype], nnx.Rngs(seed)))()
    except TypeError as err:
        raise ValueError(f"bad arguments {kw} for model {name!r}: {err}") from err
