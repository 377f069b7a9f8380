"""2-D → 3-D initialisation of the dual-token video ViT from an image ViT checkpoint (METHODS.md A).

Checkpoint: a NumPy `.npz` of the user's own image ViT (e.g. ImageNet ViT-B/16) with these float arrays, kernels
stored (in, out) as in Flax:

    patch_embed/kernel   (p, q, 3, D)      patch_embed/bias   (D,)
    cls_token            (D,), (1, D) or (1, 1, D)
    pos_embed            (1 + P, D) or (1, 1 + P, D)   CLS first, then the P = (H/p)·(W/q) patches row-major
    blocks/{i}/norm1/scale, blocks/{i}/norm1/bias                       (D,)
    blocks/{i}/attn/qkv/kernel (D, 3D), blocks/{i}/attn/qkv/bias (3D,)  output columns [q | k | v], each
                                                                        head-major (head h: h·d … (h+1)·d − 1)
    blocks/{i}/attn/proj/kernel (D, D), blocks/{i}/attn/proj/bias (D,)
    blocks/{i}/norm2/scale, blocks/{i}/norm2/bias                       (D,)
    blocks/{i}/mlp/fc1/kernel (D, M), blocks/{i}/mlp/fc1/bias (M,), blocks/{i}/mlp/fc2/kernel (M, D),
    blocks/{i}/mlp/fc2/bias (D,)
    norm/scale, norm/bias                                               (D,)

with i = 0 … depth − 1. A timm/PyTorch ViT converts name for name (`blocks.3.attn.qkv.weight` →
`blocks/3/attn/qkv/kernel`, transposed; `norm1.weight` → `norm1/scale`; `patch_embed.proj.weight` (D, 3, p, q)
→ `patch_embed/kernel` transposed (2, 3, 1, 0); `cls_token`, `pos_embed` as they are). The layout matches timm's
qkv and pre-LN block, LayerNorm ε 1e-6 and exact GELU. Other keys (e.g. `head/*`) are ignored and reported.
Set the video model's `pixel_mean`/`pixel_std` to the normalisation the image model was trained with.

Inflation (the paper's; ViViT's "filter inflation" initialiser):
- patch kernel → tubelet kernel (t, p, q, 3, D): repeated over the t taps and divided by t, so a tubelet of t
  identical frames embeds exactly as the image patch does;
- position embedding: the spatial table repeated over the T' time slots (time-major, as the tokens are), and the
  image CLS entry copied to both CLS slots;
- CLS token copied to both CLS tokens; blocks and final norm copied; the two heads keep their initialisation.
"""
from __future__ import annotations

import os
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

_BLOCK_MAP = {  # video-model block parameter → image-checkpoint key under blocks/{i}/
    ("norm1", "scale"): "norm1/scale", ("norm1", "bias"): "norm1/bias",
    ("qkv", "kernel"): "attn/qkv/kernel", ("qkv", "bias"): "attn/qkv/bias",
    ("proj", "kernel"): "attn/proj/kernel", ("proj", "bias"): "attn/proj/bias",
    ("norm2", "scale"): "norm2/scale", ("norm2", "bias"): "norm2/bias",
    ("fc1", "kernel"): "mlp/fc1/kernel", ("fc1", "bias"): "mlp/fc1/bias",
    ("fc2", "kernel"): "mlp/fc2/kernel", ("fc2", "bias"): "mlp/fc2/bias",
}


def load_image_vit(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads an image-ViT `.npz` checkpoint (naming scheme in the module docstring) into float32 arrays."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"image ViT checkpoint {os.fspath(path)!r} does not exist")
    with np.load(path, allow_pickle=False) as f:
        return {k: np.asarray(f[k], np.float32) for k in f.files}


def _take(weights: Mapping[str, np.ndarray], key: str, shape: tuple[int, ...], hint: str) -> np.ndarray:
    if key not in weights:
        raise KeyError(f"image ViT checkpoint lacks {key!r} (expected shape {shape}); see "
                       f"anonvid.models.vit_inflate for the naming scheme")
    value = np.asarray(weights[key], np.float32)
    if value.size == int(np.prod(shape)) and value.shape[-1:] == shape[-1:] and value.ndim != len(shape):
        value = value.reshape(shape)  # (D,) vs (1, 1, D) style leading unit axes
    if value.shape != shape:
        raise ValueError(f"image ViT {key!r} has shape {value.shape}, the video model needs {shape}; {hint}")
    return value


def inflate_image_vit(model: nnx.Module, weights: Mapping[str, np.ndarray]) -> list[str]:
    """Initialises a `DualViT` in place from image-ViT weights, inflated to 3-D.

    Args:
      model: the `DualViT` to initialise (its config fixes tubelet, grid, width and depth).
      weights: image-ViT arrays named as in the module docstring (`load_image_vit`).

    Returns:
      The checkpoint keys that were not used (e.g. the image classifier head), sorted.
    """
    cfg = model.config
    d, (t, p, q), (slots, gh, gw) = cfg.dim, cfg.tubelet, model.grid
    width = "build the video model with the image model's dim, depth, num_heads and mlp_ratio"
    kernel = _take(weights, "patch_embed/kernel", (p, q, 3, d), f"set tubelet=(t, {p}, {q}) to the image patch "
                   f"size and dim to its width")
    used = {"patch_embed/kernel"}
    params = nnx.to_pure_dict(nnx.state(model, nnx.Param))
    params["embed"]["kernel"] = np.repeat(kernel[None] / t, t, axis=0)
    if cfg.motion_input:  # the motion channels start at zero: a still clip still embeds as the image does
        params["embed"]["kernel"] = np.concatenate([params["embed"]["kernel"],
                                                    np.zeros_like(params["embed"]["kernel"])], axis=3)
    params["embed"]["bias"] = _take(weights, "patch_embed/bias", (d,), width)
    cls = _take(weights, "cls_token", (d,), width)
    params["cls_tokens"] = np.broadcast_to(cls, (1, 2, d)).copy()
    pos = weights.get("pos_embed")
    if pos is not None and np.asarray(pos).shape[-2] != 1 + gh * gw:
        raise ValueError(f"image ViT pos_embed has {np.asarray(pos).shape[-2] - 1} patch positions but the video "
                         f"model's spatial grid is {gh}×{gw} = {gh * gw}; build it with image_size equal to the image "
                         f"model's input size (grid × patch), or resize the position table first")
    pos = _take(weights, "pos_embed", (1 + gh * gw, d), width)
    params["pos_embed"] = np.concatenate([pos[:1], pos[:1], np.tile(pos[1:], (slots, 1))], axis=0)[None]
    used |= {"patch_embed/bias", "cls_token", "pos_embed"}
    hidden = int(d * cfg.mlp_ratio)
    for i in range(cfg.depth):
        for (module, leaf), name in _BLOCK_MAP.items():
            key = f"blocks/{i}/{name}"
            params["blocks"][i][module][leaf] = _take(weights, key, np.shape(params["blocks"][i][module][leaf]),
                                                      width if "fc" not in module else
                                                      f"{width} (MLP width {hidden})")
            used.add(key)
    extra_blocks = sorted({k.split("/")[1] for k in weights if k.startswith("blocks/")} -
                          {str(i) for i in range(cfg.depth)})
    if extra_blocks:
        raise ValueError(f"image ViT has blocks {extra_blocks} beyond the video model's depth {cfg.depth}; {width}")
    for leaf in ("scale", "bias"):
        params["norm"][leaf] = _take(weights, f"norm/{leaf}", (d,), width)
        used.add(f"norm/{leaf}")
    state = nnx.state(model, nnx.Param)
    dtypes = jax.tree.map(lambda a: a.dtype, nnx.to_pure_dict(state))
    nnx.replace_by_pure_dict(state, jax.tree.map(lambda a, dt: jnp.asarray(a, dt), params, dtypes))
    nnx.update(model, state)
    return sorted(set(weights) - used)


def init_from_image_vit(model: nnx.Module, path: str | os.PathLike) -> list[str]:
    """`inflate_image_vit` from a `.npz` file; returns the unused checkpoint keys."""
    return inflate_image_vit(model, load_image_vit(path))
