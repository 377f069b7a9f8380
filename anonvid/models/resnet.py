"""2-D ResNets (18/34/50, any base width) applied per frame, with temporal pooling for clips.

Used as the fresh privacy attacker of the fresh-attacker protocol (METHODS.md: "a 2-D ResNet-50 on each frame,
logits averaged over time" for method A; "features max-pooled over time" for method B) and as the privacy
branch f_B of method C.

Input: clips `(B, T, H, W, 3)` or images `(B, H, W, 3)`, float in [0, 1]. Frames are folded into the batch
(`B*T`), so the backbone never mixes time steps, and unfolded before pooling.
"""
from __future__ import annotations


import jax
import jax.numpy as jnp
from flax import nnx

from anonvid.models import layers

# (block kind, blocks per stage) of the standard depths.
_DEPTHS = {
    10: ("basic", (1, 1, 1, 1)),
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
}
TEMPORAL_POOLS = ("mean_logits", "max_features", "mean_features")
_MEAN = jnp.array([0.485, 0.456, 0.406])
_STD = jnp.array([0.229, 0.224, 0.225])


class BasicBlock(nnx.Module):
    """Two 3×3 convolutions with an identity or 1×1 projection shortcut."""

    expansion = 1

    def __init__(self, cin: int, width: int, stride: int, *, dtype, rngs: nnx.Rngs):
        self.conv1 = layers.conv(cin, width, (3, 3), strides=stride, dtype=dtype, rngs=rngs)
        self.bn1 = layers.batch_norm(width, dtype=dtype, rngs=rngs)
        self.conv2 = layers.conv(width, width, (3, 3), dtype=dtype, rngs=rngs)
        self.bn2 = layers.batch_norm(width, zero_init=True, dtype=dtype, rngs=rngs)
        # Assign through nnx.data: the attribute is None for identity shortcuts and a module otherwise.
        self.proj = self.proj_bn = nnx.data(None)
        if stride != 1 or cin != width:
            self.proj = nnx.data(layers.conv(cin, width, (1, 1), strides=stride, dtype=dtype, rngs=rngs))
            self.proj_bn = nnx.data(layers.batch_norm(width, dtype=dtype, rngs=rngs))

    def __call__(self, x):
        y = jax.nn.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        shortcut = x if self.proj is None else self.proj_bn(self.proj(x))
        return jax.nn.relu(y + shortcut)


class Bottleneck(nnx.Module):
    """1×1 → 3×3 (strided) → 1×1 ×4 bottleneck (torchvision's ResNet v1.5 places the stride on the 3×3)."""

    expansion = 4

    def __init__(self, cin: int, width: int, stride: int, *, dtype, rngs: nnx.Rngs):
        cout = width * self.expansion
        self.conv1 = layers.conv(cin, width, (1, 1), dtype=dtype, rngs=rngs)
        self.bn1 = layers.batch_norm(width, dtype=dtype, rngs=rngs)
        self.conv2 = layers.conv(width, width, (3, 3), strides=stride, dtype=dtype, rngs=rngs)
        self.bn2 = layers.batch_norm(width, dtype=dtype, rngs=rngs)
        self.conv3 = layers.conv(width, cout, (1, 1), dtype=dtype, rngs=rngs)
        self.bn3 = layers.batch_norm(cout, zero_init=True, dtype=dtype, rngs=rngs)
        # Assign through nnx.data: the attribute is None for identity shortcuts and a module otherwise.
        self.proj = self.proj_bn = nnx.data(None)
        if stride != 1 or cin != cout:
            self.proj = nnx.data(layers.conv(cin, cout, (1, 1), strides=stride, dtype=dtype, rngs=rngs))
            self.proj_bn = nnx.data(layers.batch_norm(cout, dtype=dtype, rngs=rngs))

    def __call__(self, x):
        y = jax.nn.relu(self.bn1(self.conv1(x)))
        y = jax.nn.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        shortcut = x if self.proj is None else self.proj_bn(self.proj(x))
        return jax.nn.relu(y + shortcut)


class ResNet2D(nnx.Module):
    """A 2-D ResNet over frames with a linear head and temporal pooling.

    Args:
      num_outputs: logits per clip (classes, or privacy attributes for a multi-label attacker).
      depth: 10, 18, 34 or 50.
      width: channels of the first stage (64 = the standard ResNet); stages double it.
      stem: "imagenet" (7×7 stride 2 + 3×3 max-pool, for ≥ 112² inputs) or "small" (one 3×3 conv, for the
        32²–64² synthetic clips).
      stem_stride: stride of the "small" stem's conv (1 keeps full resolution; 2 halves it, 4× cheaper).
      temporal_pool: how clip logits are formed from frames: "mean_logits" (average frame logits),
        "max_features" or "mean_features" (pool backbone features over time, then the head).
      dtype: computation dtype (e.g. bfloat16); parameters stay float32.
    """

    def __init__(self, num_outputs: int, *, depth: int = 18, width: int = 64, stem: str = "imagenet",
                 stem_stride: int = 1, temporal_pool: str = "mean_logits", dtype=jnp.float32, rngs: nnx.Rngs):
        if depth not in _DEPTHS:
            raise ValueError(f"ResNet depth {depth} is not one of {sorted(_DEPTHS)}")
        if temporal_pool not in TEMPORAL_POOLS:
            raise ValueError(f"temporal_pool {temporal_pool!r} is not one of {TEMPORAL_POOLS}")
        if stem not in ("imagenet", "small"):
            raise ValueError(f"stem {stem!r} is not 'imagenet' or 'small'")
        kind, blocks = _DEPTHS[depth]
        block_cls = BasicBlock if kind == "basic" else Bottleneck
        self.temporal_pool = temporal_pool
        self.stem_kind = stem
        if stem == "imagenet":
            self.stem = layers.conv(3, width, (7, 7), strides=2, dtype=dtype, rngs=rngs)
        else:
            self.stem = layers.conv(3, width, (3, 3), strides=int(stem_stride), dtype=dtype, rngs=rngs)
        self.stem_bn = layers.batch_norm(width, dtype=dtype, rngs=rngs)
        stages, cin = [], width
        for i, n in enumerate(blocks):
            w = width * 2 ** i
            for j in range(n):
                stride = 2 if (j == 0 and i > 0) else 1
                stages.append(block_cls(cin, w, stride, dtype=dtype, rngs=rngs))
                cin = w * block_cls.expansion
        self.blocks = nnx.List(stages)
        self.feature_dim = cin
        self.head = layers.dense(cin, num_outputs, axes=("mlp", None), dtype=dtype, rngs=rngs)
        self.dtype = dtype

    def frame_features(self, frames: jax.Array) -> jax.Array:
        """Backbone features `(N, feature_dim)` of images `(N, H, W, 3)` in [0, 1]."""
        x = ((frames - _MEAN) / _STD).astype(self.dtype)
        x = jax.nn.relu(self.stem_bn(self.stem(x)))
        if self.stem_kind == "imagenet":
            x = nnx.max_pool(x, (3, 3), strides=(2, 2), padding="SAME")
        for block in self.blocks:
            x = block(x)
        return jnp.mean(x, axis=(1, 2))

    def features(self, x: jax.Array) -> jax.Array:
        """Clip features `(B, feature_dim)`: frame features pooled over time (max for "max_features")."""
        clip = x if x.ndim == 5 else x[:, None]
        b, t = clip.shape[:2]
        f = self.frame_features(clip.reshape((b * t,) + clip.shape[2:])).reshape(b, t, -1)
        return jnp.max(f, axis=1) if self.temporal_pool == "max_features" else jnp.mean(f, axis=1)

    def __call__(self, x: jax.Array) -> jax.Array:
        """Logits `(B, num_outputs)` of clips `(B, T, H, W, 3)` or images `(B, H, W, 3)` (float32)."""
        if x.ndim not in (4, 5) or x.shape[-1] != 3:
            raise ValueError(f"ResNet2D expects (B, T, H, W, 3) or (B, H, W, 3); got {x.shape}")
        if self.temporal_pool == "mean_logits":
            clip = x if x.ndim == 5 else x[:, None]
            b, t = clip.shape[:2]
            f = self.frame_features(clip.reshape((b * t,) + clip.shape[2:]))
            return jnp.mean(self.head(f).reshape(b, t, -1), axis=1).astype(jnp.float32)
        return self.head(self.features(x)).astype(jnp.float32)
