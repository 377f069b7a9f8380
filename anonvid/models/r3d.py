"""R3D: a ResNet with full 3-D convolutions (Tran et al. 2018, "A Closer Look at Spatiotemporal Convolutions").

The fresh action model of the fresh-attacker protocol and the utility branch f_T of method C (SPAct uses
R3D-18 at 112²). Width, blocks per stage and the stem are configurable so the same family covers the paper's
R3D-18 and a CPU-sized model for the synthetic benchmark.

Input: clips `(B, T, H, W, 3)` float in [0, 1]; output: logits `(B, num_classes)`.
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from anonvid.models import layers

_MEAN = jnp.array([0.43216, 0.394666, 0.37645])  # Kinetics statistics, as torchvision's video models use.
_STD = jnp.array([0.22803, 0.22145, 0.216989])


class BasicBlock3D(nnx.Module):
    """Two 3×3×3 convolutions with an identity or 1×1×1 projection shortcut."""

    def __init__(self, cin: int, cout: int, stride: Sequence[int], *, dtype, rngs: nnx.Rngs):
        self.conv1 = layers.conv(cin, cout, (3, 3, 3), strides=tuple(stride), dtype=dtype, rngs=rngs)
        self.bn1 = layers.batch_norm(cout, dtype=dtype, rngs=rngs)
        self.conv2 = layers.conv(cout, cout, (3, 3, 3), dtype=dtype, rngs=rngs)
        self.bn2 = layers.batch_norm(cout, zero_init=True, dtype=dtype, rngs=rngs)
        # Assign through nnx.data: the attribute is None for identity shortcuts and a module otherwise.
        self.proj = self.proj_bn = nnx.data(None)
        if tuple(stride) != (1, 1, 1) or cin != cout:
            self.proj = nnx.data(layers.conv(cin, cout, (1, 1, 1), strides=tuple(stride), dtype=dtype, rngs=rngs))
            self.proj_bn = nnx.data(layers.batch_norm(cout, dtype=dtype, rngs=rngs))

    def __call__(self, x):
        y = jax.nn.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        shortcut = x if self.proj is None else self.proj_bn(self.proj(x))
        return jax.nn.relu(y + shortcut)


class R3D(nnx.Module):
    """R3D-style 3-D ResNet.

    Args:
      num_classes: number of action classes.
      widths: channels per stage (R3D-18: 64, 128, 256, 512).
      blocks: basic blocks per stage (R3D-18: 2, 2, 2, 2).
      stem: "kinetics" (3×7×7 conv, as R3D-18) or "small" (3×3×3 conv).
      stem_stride: (time, height, width) stride of the stem; default (1, 2, 2) for "kinetics" (R3D-18) and
        (1, 1, 1) for "small". Larger strides buy CPU speed on the synthetic benchmark, whose actions are coarse
        motions.
      temporal_stride: whether stages after the first also halve time (R3D-18 does).
      temporal_center: subtract each clip's per-pixel temporal mean from the input, so the network sees what
        changes over time (a cheap motion stream, as in two-stream networks) rather than the static scene. Off
        for the standard R3D; on for the CPU-sized action model of the synthetic benchmark, where it shortened
        the long initial loss plateau of small 3-D CNNs.
      dtype: computation dtype; parameters stay float32.
    """

    def __init__(self, num_classes: int, *, widths: Sequence[int] = (64, 128, 256, 512),
                 blocks: Sequence[int] = (2, 2, 2, 2), stem: str = "kinetics",
                 stem_stride: Sequence[int] | None = None, temporal_stride: bool = True,
                 temporal_center: bool = False,
                 dtype=jnp.float32, rngs: nnx.Rngs):
        if len(widths) != len(blocks) or not widths:
            raise ValueError(f"R3D widths {tuple(widths)} and blocks {tuple(blocks)} must be equally long")
        if stem not in ("kinetics", "small"):
            raise ValueError(f"stem {stem!r} is not 'kinetics' or 'small'")
        kernel = (3, 7, 7) if stem == "kinetics" else (3, 3, 3)
        stride = tuple(stem_stride) if stem_stride is not None else ((1, 2, 2) if stem == "kinetics" else (1, 1, 1))
        if len(stride) != 3 or min(stride) < 1:
            raise ValueError(f"stem_stride must be three positive ints (time, height, width); got {stride}")
        self.stem = layers.conv(3, widths[0], kernel, strides=stride, dtype=dtype, rngs=rngs)
        self.stem_bn = layers.batch_norm(widths[0], dtype=dtype, rngs=rngs)
        stages, cin = [], widths[0]
        for i, (w, n) in enumerate(zip(widths, blocks)):
            for j in range(n):
                s = 2 if (j == 0 and i > 0) else 1
                stride = (s if temporal_stride else 1, s, s)
                stages.append(BasicBlock3D(cin, w, stride, dtype=dtype, rngs=rngs))
                cin = w
        self.blocks = nnx.List(stages)
        self.feature_dim = cin
        self.temporal_center = temporal_center
        self.head = layers.dense(cin, num_classes, axes=("mlp", None), dtype=dtype, rngs=rngs)
        self.dtype = dtype

    def features(self, x: jax.Array) -> jax.Array:
        """Globally pooled features `(B, feature_dim)` of clips `(B, T, H, W, 3)` in [0, 1]."""
        if x.ndim != 5 or x.shape[-1] != 3:
            raise ValueError(f"R3D expects clips (B, T, H, W, 3); got {x.shape}")
        h = (x - _MEAN) / _STD
        if self.temporal_center:
            h = h - jnp.mean(h, axis=1, keepdims=True)
        h = h.astype(self.dtype)
        h = jax.nn.relu(self.stem_bn(self.stem(h)))
        for block in self.blocks:
            h = block(h)
        return jnp.mean(h, axis=(1, 2, 3))

    def __call__(self, x: jax.Array) -> jax.Array:
        """Logits `(B, num_classes)` in float32."""
        return self.head(self.features(x)).astype(jnp.float32)
