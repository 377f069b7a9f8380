"""Self-supervised privacy branch f_B of the penalty-driven method (METHODS.md C): a 2-D ResNet with a SimCLR
projection head, trained with NT-Xent on two augmented views of each image — no privacy labels.

    f_B(x) = normalize(W2 · ReLU(W1 · pool(ResNet(x))))      (paper: 2048 → 2048 → ReLU → 128, L2-normalised)

The first projection layer is the ResNet's own head (`ResNet2D(num_outputs=proj_hidden)`), so no parameter sits
unused.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from anonvid.models import layers
from anonvid.models.resnet import ResNet2D


class ContrastiveEncoder(nnx.Module):
    """ResNet backbone + 2-layer projection head with an L2-normalised output.

    Args:
      proj_dim: output embedding size (paper 128).
      proj_hidden: hidden size of the projection head (paper 2048 = ResNet-50's feature size).
      depth, width, stem, stem_stride: the `ResNet2D` backbone (paper ResNet-50, width 64, "imagenet" stem).
      dtype: computation dtype; parameters stay float32.
    """

    def __init__(self, proj_dim: int = 128, *, proj_hidden: int = 2048, depth: int = 50, width: int = 64,
                 stem: str = "imagenet", stem_stride: int = 1, dtype=jnp.float32, rngs: nnx.Rngs):
        if proj_dim < 1 or proj_hidden < 1:
            raise ValueError(f"proj_dim and proj_hidden must be positive; got {proj_dim}, {proj_hidden}")
        self.backbone = ResNet2D(proj_hidden, depth=depth, width=width, stem=stem, stem_stride=stem_stride,
                                 dtype=dtype, rngs=rngs)
        self.proj = layers.dense(proj_hidden, proj_dim, axes=("mlp", None), dtype=dtype, rngs=rngs)

    def __call__(self, images: jax.Array) -> jax.Array:
        """Unit-norm embeddings `(N, proj_dim)` (float32) of images `(N, H, W, 3)` in [0, 1]."""
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"the privacy branch expects images (N, H, W, 3); got {images.shape}")
        h = jax.nn.relu(self.backbone(images))
        z = self.proj(h).astype(jnp.float32)
        return z / jnp.maximum(jnp.linalg.norm(z, axis=-1, keepdims=True), 1e-12)


def nt_xent(z1: jax.Array, z2: jax.Array, temperature: float = 0.1) -> jax.Array:
    """NT-Xent (SimCLR) loss of two views `(N, D)` of the same N images; rows are L2-normalised embeddings.

    Every one of the 2N embeddings is classified against the other 2N − 1 by cosine similarity / temperature,
    its positive being the other view of the same image; the loss is the mean cross-entropy over all 2N.
    """
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(f"nt_xent needs two (N, D) views of equal shape; got {z1.shape} and {z2.shape}")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive; got {temperature}")
    n = z1.shape[0]
    z = jnp.concatenate([z1, z2]).astype(jnp.float32)
    logits = (z @ z.T) / temperature
    logits = jnp.where(jnp.eye(2 * n, dtype=bool), -jnp.inf, logits)  # never the sample itself
    positive = jnp.concatenate([jnp.arange(n, 2 * n), jnp.arange(n)])
    log_prob = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(log_prob[jnp.arange(2 * n), positive])
