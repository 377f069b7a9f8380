"""Dual-token video ViT with attention-driven tubelet pruning ("From Pixels to Privacy", METHODS.md A).

Input: clips `(B, T, H, W, 3)` float in [0, 1] (or uint8). A 3-D convolution with kernel = stride = tubelet
(t, p, q), computed as patchify + matmul, embeds non-overlapping tubelets into a time-major sequence of
N = T'·H'·W' tokens of width D. The sequence `[act_CLS, priv_CLS, tubelets] + learned position embedding` runs
through pre-LN transformer blocks (QKV bias, GELU MLP, stochastic depth); a final LayerNorm feeds the action head
(from CLS 0) and the privacy head (from CLS 1).

Pruning (1-indexed `prune_blocks`, paper: 3, 6, 9 at keep rate 0.9 each): inside a pruning block, after the
attention residual and before the MLP (as EViT does, so that block's MLP already runs on fewer tokens), each
tubelet is scored from that block's post-softmax attention, score = α_act − λ_priv·α_priv (`anonvid.pruning`),
and the top ceil(keep_rate·n) tubelets are kept; optionally the dropped ones are fused into one extra token
(EViT) that lives at the end of the sequence, is re-fused with the tokens dropped at every later stage, and is
never scored. The global ids of the kept tubelets are tracked: a tubelet dropped at any stage is pruned.
All counts are Python ints, so shapes are static under jit; keep rates and `fuse` are static per call.

Attention is computed explicitly (softmax(QKᵀ/√d) in float32) because the pruning blocks need the CLS rows of
the post-softmax matrix; there is no attention dropout, so the scores are never noisy.

Parameters carry logical axes (`embed`, `mlp`, `heads`, `tokens`, `conv_in`, `conv_out`) for
`anonvid.sharding`'s rules table (map `embed` to the data axis for FSDP-style parameter sharding).
Mixed precision: `dtype` is the compute dtype (e.g. bfloat16), `param_dtype` the storage dtype (float32);
attention logits, softmax, scores and the returned logits are float32. `remat=True` rematerialises each block
in the backward pass (`nnx.remat`), trading compute for activation memory.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from anonvid import pruning
from anonvid.models import layers

# Every field of `DualViTConfig` can be overridden by keyword. The tiny variant matches the synthetic benchmark's
# default 16×64×64 clips (2×8×8 tubelets → 512 tokens) and runs on a CPU; small/base are ViT-S/16 and ViT-B/16
# with the paper's 2×16×16 tubelets at 16×224² (1568 tokens).
VARIANTS: dict[str, dict[str, Any]] = {
    "tiny": dict(dim=64, depth=4, num_heads=2, tubelet=(2, 8, 8), num_frames=16, image_size=(64, 64),
                 drop_path_rate=0.0, prune_blocks=(1, 2, 3), keep_rates=(0.9, 0.9, 0.9)),
    "small": dict(dim=384, depth=12, num_heads=6, tubelet=(2, 16, 16), num_frames=16, image_size=(224, 224),
                  drop_path_rate=0.1),
    "base": dict(dim=768, depth=12, num_heads=12, tubelet=(2, 16, 16), num_frames=16, image_size=(224, 224),
                 drop_path_rate=0.2),
}
_TRUNC_INIT = nnx.initializers.truncated_normal(0.02)  # ViT/timm initialisation of linear layers and embeddings


@dataclasses.dataclass(frozen=True)
class DualViTConfig:
    """Architecture and pruning settings of a `DualViT` (hashable: it is static model structure).

    Attributes:
      num_classes: action classes (action head outputs).
      num_attributes: privacy attributes (privacy head outputs; PA-HMDB51: 5).
      dim, depth, num_heads, mlp_ratio, qkv_bias: transformer width, blocks, heads, MLP width / dim, QKV bias.
      drop_path_rate: stochastic depth rate of the last block (linearly increasing from 0 over the blocks).
      tubelet: (t, p, q) tubelet size = kernel = stride of the embedding.
      num_frames, image_size: clip size (T, (H, W)) the position embedding is built for.
      prune_blocks: 1-indexed blocks that prune (paper: 3, 6, 9).
      keep_rates: keep rate per pruning block (paper: 0.9 each), in (0, 1].
      lambda_priv: λ_priv of score = α_act − λ_priv·α_priv (paper: 0.5), >= 0.
      fuse: EViT fusion of the dropped tokens into one token.
      temporal_strict: keep the same spatial positions in every time slot (scores pooled over time).
      remat: rematerialise blocks in the backward pass.
      motion_input: embed 6 channels per pixel, the normalised clip and the clip minus its per-pixel temporal mean
        (a motion stream, as the R3D action model's `temporal_center`). On the synthetic benchmark, where the action
        is only in the motion, a ViT trained from scratch learned faster with it (top-1 0.46 vs 0.40 after 6
        epochs, one run each); pruning and masks are unchanged.
      pixel_mean, pixel_std: input normalisation of [0, 1] pixels (ImageNet statistics by default; set them to
        those the 2-D weights were trained with when inflating an image ViT).
    """

    num_classes: int
    num_attributes: int = 5
    dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    drop_path_rate: float = 0.0
    tubelet: tuple[int, int, int] = (2, 16, 16)
    num_frames: int = 16
    image_size: tuple[int, int] = (224, 224)
    prune_blocks: tuple[int, ...] = (3, 6, 9)
    keep_rates: tuple[float, ...] = (0.9, 0.9, 0.9)
    lambda_priv: float = 0.5
    fuse: bool = True
    temporal_strict: bool = False
    remat: bool = False
    motion_input: bool = False
    pixel_mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    pixel_std: tuple[float, float, float] = (0.229, 0.224, 0.225)

    def __post_init__(self):
        size = (self.image_size,) * 2 if isinstance(self.image_size, int) else tuple(self.image_size)
        set_ = functools.partial(object.__setattr__, self)
        set_("image_size", tuple(int(s) for s in size))
        set_("tubelet", tuple(int(t) for t in self.tubelet))
        set_("prune_blocks", tuple(self.prune_blocks))
        set_("keep_rates", tuple(float(r) if isinstance(r, int) and not isinstance(r, bool) else r
                                 for r in self.keep_rates))
        set_("pixel_mean", tuple(float(v) for v in self.pixel_mean))
        set_("pixel_std", tuple(float(v) for v in self.pixel_std))
        if min(self.num_classes, self.num_attributes, self.dim, self.depth, self.num_heads) < 1:
            raise ValueError("num_classes, num_attributes, dim, depth and num_heads must be positive")
        if self.dim % self.num_heads:
            raise ValueError(f"dim {self.dim} is not divisible by num_heads {self.num_heads}")
        if len(self.tubelet) != 3 or min(self.tubelet) < 1 or len(self.image_size) != 2:
            raise ValueError(f"tubelet must be (t, p, q) and image_size (H, W); got {self.tubelet}, {self.image_size}")
        if not 0.0 <= self.drop_path_rate < 1.0:
            raise ValueError(f"drop_path_rate must be in [0, 1); got {self.drop_path_rate}")
        check_clip_shape((self.num_frames, *self.image_size), self.tubelet,
                         where="config num_frames/image_size")
        pruning.check_prune_config(self.depth, self.prune_blocks, self.keep_rates)
        pruning.check_lambda_priv(self.lambda_priv)

    @property
    def grid(self) -> tuple[int, int, int]:
        """Tubelet grid (T', H', W')."""
        return (self.num_frames // self.tubelet[0], self.image_size[0] // self.tubelet[1],
                self.image_size[1] // self.tubelet[2])

    @property
    def num_tubelets(self) -> int:
        return math.prod(self.grid)


def make_config(num_classes: int, variant: str = "tiny", **overrides) -> DualViTConfig:
    """A variant's config (see `VARIANTS`) with any field overridden by keyword."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown dual_vit variant {variant!r}; known variants: {', '.join(VARIANTS)}")
    fields = {f.name for f in dataclasses.fields(DualViTConfig)} - {"num_classes"}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise TypeError(f"unknown dual_vit field(s) {unknown}; known fields: {sorted(fields)}")
    return DualViTConfig(num_classes=num_classes, **{**VARIANTS[variant], **overrides})


def check_clip_shape(thw: Sequence[int], tubelet: Sequence[int], *, where: str = "clip") -> None:
    """Raises if T, H or W is not a multiple of the tubelet (t, p, q), naming the axis and the fix."""
    for name, size, step in zip(("T (frames)", "H (height)", "W (width)"), thw, tubelet):
        if size % step or size < step:
            fix = (size // step) * step or step
            raise ValueError(f"{where}: {name} = {size} is not a positive multiple of the tubelet size {step} along "
                             f"that axis (tubelet {tuple(tubelet)}); crop or resize it to {fix} (or a multiple of "
                             f"{step}), or choose a tubelet that divides it")


class Block(nnx.Module):
    """Pre-LN transformer block with explicit multi-head self-attention and a GELU MLP."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, qkv_bias: bool, *, dtype, param_dtype,
                 rngs: nnx.Rngs):
        kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.norm1 = layers.layer_norm(dim, **kw)
        self.qkv = layers.dense(dim, 3 * dim, axes=("embed", "heads"), use_bias=qkv_bias, kernel_init=_TRUNC_INIT,
                                **kw)
        self.proj = layers.dense(dim, dim, axes=("heads", "embed"), kernel_init=_TRUNC_INIT, **kw)
        self.norm2 = layers.layer_norm(dim, **kw)
        hidden = int(dim * mlp_ratio)
        self.fc1 = layers.dense(dim, hidden, axes=("embed", "mlp"), kernel_init=_TRUNC_INIT, **kw)
        self.fc2 = layers.dense(hidden, dim, axes=("mlp", "embed"), kernel_init=_TRUNC_INIT, **kw)
        self.num_heads = num_heads

    def attention(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Self-attention branch of normalised tokens `(B, N, D)` → (output `(B, N, D)`, attention `(B, h, N, N)`)."""
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, d // self.num_heads)
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        q = q * jnp.asarray(1.0 / math.sqrt(d // self.num_heads), q.dtype)  # scale before the product (bf16 range)
        logits = jnp.einsum("bqhd,bkhd->bhqk", q, k, preferred_element_type=jnp.float32)
        attn = jax.nn.softmax(logits, axis=-1)
        out = jnp.einsum("bhqk,bkhd->bqhd", attn.astype(v.dtype), v).reshape(b, n, d)
        return self.proj(out), attn

    def mlp(self, x: jax.Array) -> jax.Array:
        return self.fc2(jax.nn.gelu(self.fc1(x), approximate=False))


def _drop_path(branch: jax.Array, rate: float, key: jax.Array | None) -> jax.Array:
    """Stochastic depth: drops a residual branch per sample with probability `rate` (rescaling the rest)."""
    if key is None or rate == 0.0:
        return branch
    keep = jax.random.bernoulli(key, 1.0 - rate, (branch.shape[0], 1, 1))
    return branch * (keep.astype(branch.dtype) / jnp.asarray(1.0 - rate, branch.dtype))


@dataclasses.dataclass(frozen=True)
class _Stage:
    """Static plan of one pruning block: tubelets kept (Python int) and how."""

    keep: int
    fuse: bool
    strict_slots: int  # time slots for temporally strict pruning; 0 = per-tubelet top-k


def _block_step(block: Block, x: jax.Array, ids: jax.Array, key: jax.Array | None, lambda_priv, *,
                stage: _Stage | None, num_fused: int, drop_rate: float):
    """One block; in a pruning block, scores and prunes the tubelets between the attention and the MLP.

    Returns `(x, ids, scores)`; scores `(B, n)` of the tubelets entering the stage, or None for other blocks.
    """
    k_attn = k_mlp = None
    if key is not None:
        k_attn, k_mlp = jax.random.split(key)
    h, attn = block.attention(block.norm1(x))
    x = x + _drop_path(h, drop_rate, k_attn)
    scores = None
    if stage is not None:
        alpha_act, alpha_priv = pruning.cls_attention(attn, num_fused=num_fused)
        scores = pruning.tubelet_scores(alpha_act, alpha_priv, lambda_priv)
        n = scores.shape[1]
        if stage.keep < n:
            cls, tubelets = x[:, :pruning.NUM_CLS], x[:, pruning.NUM_CLS:pruning.NUM_CLS + n]
            if stage.strict_slots:
                kept, ids, pos = pruning.top_k_keep_strict(tubelets, scores, ids, stage.keep // stage.strict_slots,
                                                           stage.strict_slots)
            else:
                kept, ids, pos = pruning.top_k_keep(tubelets, scores, ids, stage.keep)
            parts = [cls, kept]
            if stage.fuse:
                # Weights: the action CLS's head-mean attention over tubelets and any previous fused token (a
                # positive multiple of α_act on the tubelets, which fuse_dropped's normalisation cancels).
                weights = jnp.mean(attn[:, :, 0, pruning.NUM_CLS:], axis=1)
                dropped_old = jnp.zeros((x.shape[0], num_fused), bool)
                kept_mask = jnp.concatenate([pruning.positions_to_mask(pos, n), dropped_old], axis=1)
                parts.append(pruning.fuse_dropped(x[:, pruning.NUM_CLS:], weights, kept_mask))
            x = jnp.concatenate(parts, axis=1)
    x = x + _drop_path(block.mlp(block.norm2(x)), drop_rate, k_mlp)
    return x, ids, scores


def _make_step(stage: _Stage | None, num_fused: int, drop_rate: float):
    """`_block_step` with its static arguments closed over (nnx.remat takes positional array arguments only)."""

    def step(block, x, ids, key, lambda_priv):
        return _block_step(block, x, ids, key, lambda_priv, stage=stage, num_fused=num_fused, drop_rate=drop_rate)

    return step


class TubeletEmbed(nnx.Module):
    """A 3-D convolution with kernel = stride = tubelet (t, p, q), computed as patchify + one matrix product.

    Identical to `lax.conv` with VALID padding, kernel `(t, p, q, 3, D)` (conv layout), but the weight gradient is
    one matmul: the shared `layers.conv` computes it per kernel tap (128 taps for 2×8×8), which made the train
    step's compile time dominate on CPU.
    """

    def __init__(self, tubelet: Sequence[int], dim: int, *, channels: int = 3, dtype, param_dtype, rngs: nnx.Rngs):
        self.tubelet = tuple(tubelet)
        fan_in = math.prod(self.tubelet) * channels
        init = nnx.initializers.variance_scaling(1.0, "fan_in", "truncated_normal", in_axis=(0, 1, 2, 3),
                                                 out_axis=4)
        self.kernel = layers.param(init, (*self.tubelet, channels, dim), (None, None, None, "conv_in", "conv_out"),
                                   param_dtype=param_dtype, rngs=rngs)
        self.bias = layers.param(nnx.initializers.zeros_init(), (dim,), ("conv_out",), param_dtype=param_dtype,
                                 rngs=rngs)
        self.fan_in = fan_in
        self.dtype = dtype

    def __call__(self, x: jax.Array) -> jax.Array:
        """`(B, T, H, W, C)` → `(B, T', H', W', D)`."""
        (t, p, q), (b, tt, hh, ww, c) = self.tubelet, x.shape
        x = x.reshape(b, tt // t, t, hh // p, p, ww // q, q, c).transpose(0, 1, 3, 5, 2, 4, 6, 7)
        kernel = self.kernel[...].astype(self.dtype).reshape(self.fan_in, -1)
        y = x.reshape(b, tt // t, hh // p, ww // q, self.fan_in).astype(self.dtype) @ kernel
        return y + self.bias[...].astype(self.dtype)


class DualViT(nnx.Module):
    """Video ViT with an action CLS and a privacy CLS token and attention-driven tubelet pruning.

    Args:
      num_classes: action classes.
      num_attributes: privacy attributes (default 5).
      variant: "tiny", "small" or "base" (see `VARIANTS`).
      dtype: computation dtype (e.g. bfloat16).
      param_dtype: parameter dtype (float32).
      rngs: parameter initialisation RNGs.
      **overrides: any `DualViTConfig` field (dim, depth, tubelet, num_frames, image_size, prune_blocks, ...).
    """

    def __init__(self, num_classes: int, *, num_attributes: int = 5, variant: str = "tiny", dtype=jnp.float32,
                 param_dtype=jnp.float32, rngs: nnx.Rngs, **overrides):
        cfg = make_config(num_classes, variant, num_attributes=num_attributes, **overrides)
        self.config = cfg
        self.grid = cfg.grid
        self.remat = cfg.remat  # may be switched after construction (static: switching retraces)
        self.dtype = dtype
        kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.embed = TubeletEmbed(cfg.tubelet, cfg.dim, channels=6 if cfg.motion_input else 3, **kw)
        self.cls_tokens = layers.param(_TRUNC_INIT, (1, pruning.NUM_CLS, cfg.dim), (None, None, "embed"),
                                       param_dtype=param_dtype, rngs=rngs)
        self.pos_embed = layers.param(_TRUNC_INIT, (1, pruning.NUM_CLS + cfg.num_tubelets, cfg.dim),
                                      (None, "tokens", "embed"), param_dtype=param_dtype, rngs=rngs)
        self.blocks = nnx.List([Block(cfg.dim, cfg.num_heads, cfg.mlp_ratio, cfg.qkv_bias, **kw)
                                for _ in range(cfg.depth)])
        self.norm = layers.layer_norm(cfg.dim, **kw)
        self.action_head = layers.dense(cfg.dim, cfg.num_classes, axes=("embed", None), kernel_init=_TRUNC_INIT, **kw)
        self.privacy_head = layers.dense(cfg.dim, cfg.num_attributes, axes=("embed", None), kernel_init=_TRUNC_INIT,
                                         **kw)

    def stages(self, keep_rates: Sequence[float] | None = None, fuse: bool | None = None) -> dict[int, _Stage]:
        """Static pruning plan {1-indexed block: stage} for the given (or configured) keep rates and fusion."""
        cfg = self.config
        rates = cfg.keep_rates if keep_rates is None else tuple(keep_rates)
        pruning.check_prune_config(cfg.depth, cfg.prune_blocks, rates)
        fuse = cfg.fuse if fuse is None else fuse
        if not isinstance(fuse, bool):
            raise ValueError(f"fuse must be a Python bool (static); got {fuse!r}")
        slots = self.grid[0] if cfg.temporal_strict else 0
        counts = pruning.kept_counts(cfg.num_tubelets, rates, time_slots=slots or None)
        return {b: _Stage(k, fuse, slots) for b, k in zip(cfg.prune_blocks, counts)}

    def embed_tokens(self, clips: jax.Array) -> jax.Array:
        """Clips → `(B, 2 + N, D)` sequence [act_CLS, priv_CLS, tubelets] + position embedding, compute dtype."""
        cfg = self.config
        if clips.ndim != 5 or clips.shape[-1] != 3:
            raise ValueError(f"DualViT expects clips (B, T, H, W, 3); got {clips.shape}")
        check_clip_shape(clips.shape[1:4], cfg.tubelet)
        if tuple(clips.shape[1:4]) != (cfg.num_frames, *cfg.image_size):
            raise ValueError(f"clip (T, H, W) = {tuple(clips.shape[1:4])} differs from the size the position "
                             f"embedding was built for, {(cfg.num_frames, *cfg.image_size)}; resize the clips or "
                             f"build the model with num_frames={clips.shape[1]}, image_size={clips.shape[2:4]}")
        x = clips.astype(jnp.float32) / 255.0 if clips.dtype == jnp.uint8 else clips.astype(jnp.float32)
        x = (x - jnp.array(cfg.pixel_mean)) / jnp.array(cfg.pixel_std)
        if cfg.motion_input:  # appearance and motion: the clip minus its per-pixel temporal mean
            x = jnp.concatenate([x, x - jnp.mean(x, axis=1, keepdims=True)], axis=-1)
        x = self.embed(x.astype(self.dtype))
        x = x.reshape(x.shape[0], -1, cfg.dim)  # time-major: id = (t·H' + h)·W' + w
        cls = jnp.broadcast_to(self.cls_tokens[...].astype(self.dtype), (x.shape[0], pruning.NUM_CLS, cfg.dim))
        return jnp.concatenate([cls, x], axis=1) + self.pos_embed[...].astype(self.dtype)

    def __call__(self, clips: jax.Array, *, train: bool = False, key: jax.Array | None = None,
                 keep_rates: Sequence[float] | None = None, lambda_priv=None, fuse: bool | None = None,
                 privacy_grl=None):
        """Forward pass.

        Args:
          clips: `(B, T, H, W, 3)` float in [0, 1] or uint8, T/H/W = the configured clip size.
          train: training mode (stochastic depth on, which needs `key` when drop_path_rate > 0).
          key: PRNG key for stochastic depth.
          keep_rates: per pruning block, overriding the config (static Python floats: they fix the shapes).
          lambda_priv: λ_priv overriding the config; may be a traced scalar.
          fuse: EViT fusion on/off overriding the config (static).
          privacy_grl: None, or the gradient-reversal coefficient (may be traced) inserted between the normalised
            privacy CLS and the privacy head: the head learns to find privacy, the backbone is pushed to hide it
            (the `adversarial` training mode, DANN).

        Returns:
          `(outputs, aux)`: outputs {"action": (B, num_classes), "privacy": (B, num_attributes)} float32 logits;
          aux {"scores": per pruning stage `(B, n_stage)` float32 scores of the tubelets entering it,
          "score_ids": their global ids `(B, n_stage)`, "kept_ids": `(B, K)` global ids of the tubelets kept by
          every stage (ascending), "grid": (T', H', W')}.
        """
        cfg = self.config
        stages = self.stages(keep_rates, fuse)
        lam = cfg.lambda_priv if lambda_priv is None else lambda_priv
        pruning.check_lambda_priv(lam)
        drop = cfg.drop_path_rate if train else 0.0
        if drop > 0 and key is None:
            raise ValueError("training with drop_path_rate > 0 needs a PRNG key: call model(clips, train=True, key=k)")
        x = self.embed_tokens(clips)
        b = x.shape[0]
        ids = jnp.broadcast_to(jnp.arange(cfg.num_tubelets, dtype=jnp.int32), (b, cfg.num_tubelets))
        scores, score_ids, num_fused = [], [], 0
        for i, block in enumerate(self.blocks, start=1):
            stage = stages.get(i)
            rate = drop * (i - 1) / max(cfg.depth - 1, 1)  # linear stochastic-depth schedule
            step = _make_step(stage, num_fused, rate)
            if self.remat:
                step = nnx.remat(step)
            block_key = jax.random.fold_in(key, i) if (key is not None and rate > 0) else None
            ids_in = ids
            x, ids, s = step(block, x, ids, block_key, lam)
            if stage is not None:
                scores.append(s)
                score_ids.append(ids_in)
                if stage.fuse and stage.keep < ids_in.shape[1]:
                    num_fused = 1
        x = self.norm(x)
        priv = x[:, 1] if privacy_grl is None else layers.gradient_reversal(x[:, 1], jnp.asarray(privacy_grl,
                                                                                                  jnp.float32))
        outputs = {"action": self.action_head(x[:, 0]).astype(jnp.float32),
                   "privacy": self.privacy_head(priv).astype(jnp.float32)}
        aux = {"scores": tuple(scores), "score_ids": tuple(score_ids), "kept_ids": ids, "grid": self.grid}
        return outputs, aux
