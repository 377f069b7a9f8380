"""UNet++ image-to-image anonymizer f_A of the penalty-driven method (METHODS.md C; Zhou et al. 2018).

Nodes X^{i,j}: level i (resolution 1/2^i), column j. Column 0 is the encoder; every later node fuses *all*
earlier nodes of its level with the upsampled node below it (the nested dense skip paths):

    X^{i,0} = E_i(down(X^{i-1,0}))                         (E_0 on the image)
    X^{i,j} = C_{i,j}([X^{i,0}, ..., X^{i,j-1}, up(X^{i+1,j-1})])   for j >= 1
    output  = sigmoid(1×1 conv(X^{0,L}))

The encoder is either "conv" (two 3×3 conv-BN-ReLU per level, the original UNet++) or "resnet" (a stem then
ResNet basic-block stages, the paper's ResNet encoder at any width). The anonymizer works on single RGB frames;
`apply_per_frame` runs it on clips with the correct reshape — (B, T, H, W, 3) → (B·T, H, W, 3), channels
intact — which the reference code got wrong (it scrambled channels and time). Frames whose sides are not
multiples of 2^depth are edge-padded and cropped back, so any frame size works.
"""
from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from anonvid.models import layers
from anonvid.models.resnet import BasicBlock

ENCODERS = ("conv", "resnet")


class ConvBlock(nnx.Module):
    """Two 3×3 convolutions, each followed by BatchNorm and ReLU."""

    def __init__(self, cin: int, cout: int, *, dtype, rngs: nnx.Rngs):
        self.conv1 = layers.conv(cin, cout, (3, 3), dtype=dtype, rngs=rngs)
        self.bn1 = layers.batch_norm(cout, dtype=dtype, rngs=rngs)
        self.conv2 = layers.conv(cout, cout, (3, 3), dtype=dtype, rngs=rngs)
        self.bn2 = layers.batch_norm(cout, dtype=dtype, rngs=rngs)

    def __call__(self, x):
        x = jax.nn.relu(self.bn1(self.conv1(x)))
        return jax.nn.relu(self.bn2(self.conv2(x)))


class ResNetStage(nnx.Module):
    """`blocks` ResNet basic blocks; the first one changes width and (with `stride` 2) halves the resolution."""

    def __init__(self, cin: int, cout: int, blocks: int, stride: int, *, dtype, rngs: nnx.Rngs):
        self.blocks = nnx.List([BasicBlock(cin if i == 0 else cout, cout, stride if i == 0 else 1, dtype=dtype,
                                           rngs=rngs) for i in range(blocks)])

    def __call__(self, x):
        for block in self.blocks:
            x = block(x)
        return x


class UNetPlusPlus(nnx.Module):
    """UNet++ with nested dense skip paths and a sigmoid output.

    Args:
      out_channels: output channels (3: an RGB image in [0, 1]).
      widths: channels per level, top to bottom; `len(widths) - 1` is the depth L (number of 2× downsamplings).
        The paper's decoder is 256-128-64-32 on a ResNet-18 encoder; the CPU synthetic config uses (8, 16, 32).
      encoder: "conv" (original UNet++) or "resnet" (basic-block stages; `resnet_blocks` per level).
      resnet_blocks: basic blocks per level for the "resnet" encoder.
      dtype: computation dtype; parameters stay float32.
    """

    def __init__(self, out_channels: int = 3, *, widths: Sequence[int] = (16, 32, 64, 128), encoder: str = "conv",
                 resnet_blocks: int = 1, in_channels: int = 3, dtype=jnp.float32, rngs: nnx.Rngs):
        widths = tuple(int(w) for w in widths)
        if len(widths) < 2 or min(widths) < 1:
            raise ValueError(f"UNet++ widths need at least two positive levels (depth >= 1); got {widths}")
        if encoder not in ENCODERS:
            raise ValueError(f"UNet++ encoder {encoder!r} is not one of {ENCODERS}")
        if int(resnet_blocks) < 1:
            raise ValueError(f"resnet_blocks must be >= 1; got {resnet_blocks}")
        self.widths, self.encoder, self.dtype = widths, encoder, dtype
        depth = len(widths) - 1
        enc = []
        for i, w in enumerate(widths):
            if encoder == "conv":
                enc.append(ConvBlock(in_channels if i == 0 else widths[i - 1], w, dtype=dtype, rngs=rngs))
            elif i == 0:
                enc.append(ConvBlock(in_channels, w, dtype=dtype, rngs=rngs))  # full-resolution stem
            else:
                enc.append(ResNetStage(widths[i - 1], w, int(resnet_blocks), 2, dtype=dtype, rngs=rngs))
        self.enc = nnx.List(enc)
        # nodes[i][j - 1] is C_{i,j}: input = j nodes of width widths[i] + one upsampled node of width widths[i+1]
        self.nodes = nnx.List([
            nnx.List([ConvBlock(j * widths[i] + widths[i + 1], widths[i], dtype=dtype, rngs=rngs)
                      for j in range(1, depth - i + 1)])
            for i in range(depth)])
        self.head = layers.conv(widths[0], out_channels, (1, 1), use_bias=True, dtype=dtype, rngs=rngs)

    @property
    def depth(self) -> int:
        """Number of 2× downsamplings L."""
        return len(self.widths) - 1

    def __call__(self, images: jax.Array) -> jax.Array:
        """Output images `(N, H, W, out_channels)` in (0, 1) of images `(N, H, W, C)` in [0, 1]."""
        if images.ndim != 4:
            raise ValueError(f"UNet++ expects images (N, H, W, C); got {images.shape} (use apply_per_frame for clips)")
        n, h, w, _ = images.shape
        m = 2 ** self.depth
        ph, pw = (-h) % m, (-w) % m
        x = (images - 0.5) * 2.0
        if ph or pw:  # edge padding to a multiple of 2^L, cropped off at the end
            x = jnp.pad(x, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge")
        x = x.astype(self.dtype)
        grid: list[list[jax.Array]] = []
        for i, block in enumerate(self.enc):
            if i == 0:
                grid.append([block(x)])
            elif self.encoder == "conv":
                grid.append([block(nnx.max_pool(grid[i - 1][0], (2, 2), strides=(2, 2)))])
            else:
                grid.append([block(grid[i - 1][0])])  # the stage's first block has stride 2
        for j in range(1, self.depth + 1):
            for i in range(self.depth - j + 1):
                below = _upsample2(grid[i + 1][j - 1])
                grid[i].append(self.nodes[i][j - 1](jnp.concatenate([*grid[i][:j], below], axis=-1)))
        out = jax.nn.sigmoid(self.head(grid[0][self.depth]).astype(jnp.float32))
        return out[:, :h, :w]


def _upsample2(x: jax.Array) -> jax.Array:
    """Nearest-neighbour 2× upsampling (as the reference UNet++ decoder)."""
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def apply_per_frame(model, clips: jax.Array) -> jax.Array:
    """Runs an image model on every frame: `(B, T, H, W, C)` → `(B·T, H, W, C)` → model → `(B, T, H, W, C')`.

    Images `(B, H, W, C)` pass straight through. The reshape only merges the leading batch and time axes, so
    each frame keeps its own pixels and channels (the reference code permuted channels into time here).
    """
    if clips.ndim == 4:
        return model(clips)
    if clips.ndim != 5:
        raise ValueError(f"expected clips (B, T, H, W, C) or images (B, H, W, C); got {clips.shape}")
    b, t = clips.shape[:2]
    out = model(clips.reshape((b * t,) + clips.shape[2:]))
    return out.reshape((b, t) + out.shape[1:])
