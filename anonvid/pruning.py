"""Attention-driven tubelet scoring and pruning for the dual-token video ViT (METHODS.md A; arXiv 2603.26336).

Pure `jnp` functions with static shapes, usable inside `jit`, `vmap` and under any sharding. Conventions:

- Token sequence of a pruning block: `[act_CLS, priv_CLS, tubelet_1 … tubelet_n, (fused)]`. The two CLS tokens
  come first; the EViT fused token, once a stage has created it, is the *last* token. Tubelets are time-major:
  the global id of the tubelet at grid position (t, h, w) of a (T', H', W') grid is `(t·H' + h)·W' + w`.
- Scores (paper): α_act, α_priv = the head-mean post-softmax attention rows of the two CLS tokens over the
  tubelet columns, each L1-normalised over those columns; score = α_act − λ_priv·α_priv. High = keep.
- Counts are Python ints known at trace time: k = ceil(keep_rate · n) (`keep_count`), so every shape is static.
- Kept tokens are returned in their original (time-major) order by default; attention is permutation-
  equivariant once position embeddings are added, so the order changes no output, and ascending ids are easier
  to read and compare. `order="score"` gives EViT's descending-score order instead.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from anonvid.minimize import gaussian_blur

NUM_CLS = 2  # [action CLS, privacy CLS]
FILLS = ("black", "blur", "mean")
ORDERS = ("original", "score")
_TINY = float(jnp.finfo(jnp.float32).tiny)
# Absorbs float error in keep_rate·n before the ceiling: 0.7·10 = 7.000000000000001 must keep 7, not 8.
_CEIL_SLACK = 1e-9


def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def check_keep_rate(keep_rate: Any) -> float:
    """Returns `keep_rate` as a float after checking it is a Python number in (0, 1]."""
    if not _is_number(keep_rate):
        raise ValueError(f"keep rate {keep_rate!r} must be a Python number in (0, 1]: it fixes the kept token count "
                         f"at trace time (pass keep rates as static values, not arrays)")
    if not 0.0 < float(keep_rate) <= 1.0:
        raise ValueError(f"keep rate {keep_rate} is outside (0, 1]; use e.g. 0.9 (keep 90% of the tokens) or 1.0 "
                         f"(no pruning)")
    return float(keep_rate)


def check_lambda_priv(lambda_priv: Any) -> None:
    """Raises if a concrete `lambda_priv` is negative or not finite (traced values cannot be checked)."""
    try:
        value = np.asarray(lambda_priv, dtype=np.float64)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return
    if value.ndim or not np.isfinite(value) or value < 0:
        raise ValueError(f"lambda_priv must be a finite number >= 0 (paper: 0.5; > 1 removes more privacy, < 1 keeps "
                         f"more utility); got {lambda_priv!r}")


def check_prune_config(depth: int, prune_blocks: Sequence[int], keep_rates: Sequence[float]) -> None:
    """Checks pruning blocks (1-indexed, strictly increasing, within 1..depth) and one keep rate per block."""
    blocks = tuple(prune_blocks)
    for b in blocks:
        if not isinstance(b, numbers.Integral) or isinstance(b, bool) or not 1 <= b <= depth:
            raise ValueError(f"pruning block index {b!r} is outside 1..{depth} (blocks are 1-indexed; the paper "
                             f"prunes in blocks 3, 6, 9 of 12); choose indices within the model depth {depth}")
    if any(a >= b for a, b in zip(blocks, blocks[1:])):
        raise ValueError(f"prune_blocks {blocks} must be strictly increasing")
    if len(tuple(keep_rates)) != len(blocks):
        raise ValueError(f"keep_rates {tuple(keep_rates)} must give one rate per pruning block {blocks}")
    for r in keep_rates:
        check_keep_rate(r)


def keep_count(n: int, keep_rate: float) -> int:
    """Tokens kept out of `n`: ceil(keep_rate · n), a Python int (static under jit); at least 1."""
    if not isinstance(n, numbers.Integral) or isinstance(n, bool) or n < 1:
        raise ValueError(f"token count must be a positive int; got {n!r}")
    rate = check_keep_rate(keep_rate)
    return max(1, math.ceil(rate * int(n) - _CEIL_SLACK))


def kept_counts(n: int, keep_rates: Sequence[float], *, time_slots: int | None = None) -> tuple[int, ...]:
    """Tubelets left after each pruning stage, starting from `n`.

    Args:
      n: tubelet tokens entering the first stage.
      keep_rates: keep rate per stage.
      time_slots: for temporally strict pruning, the number of time slots T' (n must be a multiple): each stage
        keeps `keep_count(n / T', rate)` spatial positions in every slot.

    Returns:
      The counts after each stage (Python ints).
    """
    counts = []
    for rate in keep_rates:
        if time_slots:
            if n % time_slots:
                raise ValueError(f"{n} tokens do not split into {time_slots} time slots")
            n = time_slots * keep_count(n // time_slots, rate)
        else:
            n = keep_count(n, rate)
        counts.append(n)
    return tuple(counts)


def cls_attention(attn: jax.Array, *, num_fused: int = 0) -> tuple[jax.Array, jax.Array]:
    """Head-mean attention of the two CLS tokens over the tubelet tokens, L1-normalised (α_act, α_priv).

    Args:
      attn: `(B, heads, N, N)` post-softmax attention (no dropout) of a sequence whose first two tokens are the
        action and privacy CLS tokens.
      num_fused: fused tokens at the *end* of the sequence (0 or 1); their columns are excluded, like the CLS
        columns, so α covers the real tubelets only.

    Returns:
      `(alpha_act, alpha_priv)`, each `(B, n)` float32 with n = N − 2 − num_fused, summing to 1 over n.
    """
    if attn.ndim != 4 or attn.shape[-1] != attn.shape[-2]:
        raise ValueError(f"attention must be (B, heads, N, N); got {attn.shape}")
    n_tokens = attn.shape[-1]
    if n_tokens - NUM_CLS - num_fused < 1:
        raise ValueError(f"a sequence of {n_tokens} tokens with {NUM_CLS} CLS and {num_fused} fused tokens has no "
                         f"tubelet tokens to score")
    rows = jnp.mean(attn[:, :, :NUM_CLS, NUM_CLS:n_tokens - num_fused].astype(jnp.float32), axis=1)
    rows = rows / jnp.maximum(jnp.sum(rows, axis=-1, keepdims=True), _TINY)
    return rows[:, 0], rows[:, 1]


def tubelet_scores(alpha_act: jax.Array, alpha_priv: jax.Array, lambda_priv) -> jax.Array:
    """score = α_act − λ_priv · α_priv (paper eq.): high for action-relevant, privacy-poor tubelets (kept).

    `lambda_priv` may be a traced scalar (a sweep without recompiling); a concrete one must be >= 0.
    """
    check_lambda_priv(lambda_priv)
    if alpha_act.shape != alpha_priv.shape:
        raise ValueError(f"alpha_act {alpha_act.shape} and alpha_priv {alpha_priv.shape} differ in shape")
    return alpha_act - jnp.asarray(lambda_priv, alpha_act.dtype) * alpha_priv


def _check_token_args(tokens: jax.Array, scores: jax.Array, ids: jax.Array, order: str) -> None:
    if scores.ndim != 2 or ids.shape != scores.shape or tokens.shape[:2] != scores.shape:
        raise ValueError(f"expected tokens (B, n, D), scores (B, n) and ids (B, n); got {tokens.shape}, "
                         f"{scores.shape}, {ids.shape}")
    if order not in ORDERS:
        raise ValueError(f"order {order!r} is not one of {ORDERS}")


def _gather(tokens: jax.Array, ids: jax.Array, idx: jax.Array) -> tuple[jax.Array, jax.Array]:
    return jnp.take_along_axis(tokens, idx[..., None], axis=1), jnp.take_along_axis(ids, idx, axis=1)


def top_k_keep(tokens: jax.Array, scores: jax.Array, ids: jax.Array, k: int, *,
               order: str = "original") -> tuple[jax.Array, jax.Array, jax.Array]:
    """Keeps the k highest-scoring tokens.

    Args:
      tokens: `(B, n, D)` tubelet tokens (no CLS or fused tokens).
      scores: `(B, n)` scores; ties go to the lower position (`lax.top_k`).
      ids: `(B, n)` global tubelet ids of the tokens.
      k: tokens to keep, a Python int in 1..n.
      order: "original" (kept tokens in their current order, so ids stay ascending) or "score" (descending score).

    Returns:
      `(kept_tokens (B, k, D), kept_ids (B, k), positions (B, k))`, positions indexing the n input tokens.
    """
    _check_token_args(tokens, scores, ids, order)
    n = scores.shape[1]
    if not isinstance(k, numbers.Integral) or not 1 <= k <= n:
        raise ValueError(f"k must be a Python int in 1..{n}; got {k!r}")
    _, idx = jax.lax.top_k(scores, int(k))
    if order == "original":
        idx = jnp.sort(idx, axis=-1)
    return (*_gather(tokens, ids, idx), idx)


def temporally_strict(scores: jax.Array, grid: Sequence[int]) -> jax.Array:
    """Scores pooled (mean) over time per spatial location: `(B, T'·S)` time-major → `(B, S)`.

    Keeping the top spatial locations of these pooled scores in *every* time slot keeps the same spatial
    positions throughout the clip (the stricter option of METHODS.md A; see `top_k_keep_strict`).

    Args:
      scores: `(B, N)` time-major tubelet scores.
      grid: the current token grid; only its first entry T' (time slots) is used, and N must be a multiple of it,
        e.g. (T', H', W') before any pruning or (T', S) after strict pruning.
    """
    slots = int(tuple(grid)[0])
    if scores.ndim != 2 or slots < 1 or scores.shape[1] % slots:
        raise ValueError(f"scores {scores.shape} do not split into {slots} time slots")
    return jnp.mean(scores.reshape(scores.shape[0], slots, -1), axis=1)


def top_k_keep_strict(tokens: jax.Array, scores: jax.Array, ids: jax.Array, k_spatial: int, time_slots: int, *,
                      order: str = "original") -> tuple[jax.Array, jax.Array, jax.Array]:
    """Temporally strict top-k: the same `k_spatial` spatial positions kept in each of the `time_slots` slots.

    Tokens must be time-major with the same spatial positions in every slot (true initially and after every
    strict stage). Returns `(kept_tokens, kept_ids, positions)` with `time_slots · k_spatial` tokens, time-major.
    """
    _check_token_args(tokens, scores, ids, order)
    pooled = temporally_strict(scores, (time_slots,))
    s = pooled.shape[1]
    if not isinstance(k_spatial, numbers.Integral) or not 1 <= k_spatial <= s:
        raise ValueError(f"k_spatial must be a Python int in 1..{s}; got {k_spatial!r}")
    _, cols = jax.lax.top_k(pooled, int(k_spatial))
    if order == "original":
        cols = jnp.sort(cols, axis=-1)
    idx = (jnp.arange(time_slots)[None, :, None] * s + cols[:, None, :]).reshape(scores.shape[0], -1)
    return (*_gather(tokens, ids, idx), idx)


def positions_to_mask(positions: jax.Array, n: int) -> jax.Array:
    """`(B, k)` positions in 0..n−1 → `(B, n)` boolean mask, True at the positions."""
    b = positions.shape[0]
    return jnp.zeros((b, n), bool).at[jnp.arange(b)[:, None], positions].set(True)


def fuse_dropped(tokens: jax.Array, weights: jax.Array, kept_mask: jax.Array) -> jax.Array:
    """EViT token fusion: the dropped tokens merged into one token.

    fused = Σ_{i dropped} w_i x_i / Σ_{j dropped} w_j, i.e. the weights (the action CLS attention α_act) are
    normalised over the dropped set, so the fused token is a convex combination of dropped tokens and stays on
    their scale. (EViT's code sums with the raw attention weights; normalising only rescales the token.)

    Args:
      tokens: `(B, n, D)` candidate tokens (the model passes the tubelets and any previous fused token, which
        is always merged again).
      weights: `(B, n)` non-negative weights, e.g. head-mean attention of the action CLS over those tokens; any
        positive multiple gives the same result, so α_act and the raw attention row are interchangeable.
      kept_mask: `(B, n)` bool, True for kept tokens (excluded from the fusion).

    Returns:
      `(B, 1, D)` fused token, in `tokens.dtype` (zero if nothing was dropped).
    """
    if tokens.shape[:2] != weights.shape or kept_mask.shape != weights.shape:
        raise ValueError(f"expected tokens (B, n, D), weights (B, n), kept_mask (B, n); got {tokens.shape}, "
                         f"{weights.shape}, {kept_mask.shape}")
    w = jnp.where(kept_mask, 0.0, weights.astype(jnp.float32))
    w = w / jnp.maximum(jnp.sum(w, axis=-1, keepdims=True), _TINY)
    fused = jnp.einsum("bn,bnd->bd", w.astype(tokens.dtype), tokens, preferred_element_type=jnp.float32)
    return fused[:, None].astype(tokens.dtype)


def _three(name: str, value: Sequence[int]) -> tuple[int, int, int]:
    out = tuple(int(v) for v in value)
    if len(out) != 3 or min(out) < 1:
        raise ValueError(f"{name} must be three positive ints (time, height, width); got {tuple(value)}")
    return out


def kept_ids_to_mask(kept_ids: jax.Array, grid: Sequence[int], tubelet: Sequence[int], clip_shape: Sequence[int],
                     *, dtype=jnp.float32) -> jax.Array:
    """Kept global tubelet ids → `(B, T, H, W)` {0, 1} pixel mask (nearest upsampling of the tubelet mask).

    Args:
      kept_ids: `(B, K)` global ids in 0..T'·H'·W'−1 (time-major), distinct.
      grid: tubelet grid (T', H', W').
      tubelet: tubelet size (t, p, q).
      clip_shape: (T, H, W) of the clip; must equal grid × tubelet.
      dtype: mask dtype.

    Returns:
      The mask: 1 where the pixel's tubelet was kept, 0 where it was pruned.
    """
    grid, tubelet, clip_shape = _three("grid", grid), _three("tubelet", tubelet), _three("clip_shape", clip_shape)
    if tuple(g * t for g, t in zip(grid, tubelet)) != clip_shape:
        raise ValueError(f"grid {grid} × tubelet {tubelet} does not cover the clip (T, H, W) = {clip_shape}")
    if kept_ids.ndim != 2:
        raise ValueError(f"kept_ids must be (B, K); got {kept_ids.shape}")
    b = kept_ids.shape[0]
    m = positions_to_mask(kept_ids, math.prod(grid)).astype(dtype).reshape((b, *grid))
    m = jnp.broadcast_to(m[:, :, None, :, None, :, None],
                         (b, grid[0], tubelet[0], grid[1], tubelet[1], grid[2], tubelet[2]))
    return m.reshape((b, *clip_shape))


def apply_mask(clips: jax.Array, mask: jax.Array, fill: str = "black", *, blur_sigma: float = 8.0) -> jax.Array:
    """Replaces pruned pixels (mask 0) by a fill; kept pixels are returned unchanged.

    Args:
      clips: `(B, T, H, W, C)` uint8 or float pixels.
      mask: `(B, T, H, W)` {0, 1} (`kept_ids_to_mask`).
      fill: "black" (zeros, the paper), "blur" (the same pixels Gaussian-blurred with `blur_sigma`, by
        `anonvid.minimize.gaussian_blur`) or "mean" (each clip's mean colour over all its pixels).
      blur_sigma: blur standard deviation in pixels for fill "blur".

    Returns:
      Clips of the same shape and dtype.
    """
    if fill not in FILLS:
        raise ValueError(f"unknown fill {fill!r}; use one of {FILLS}")
    if clips.ndim != 5 or mask.shape != clips.shape[:-1]:
        raise ValueError(f"expected clips (B, T, H, W, C) and mask (B, T, H, W); got {clips.shape} and {mask.shape}")
    if fill == "black":
        filled = jnp.zeros_like(clips)
    elif fill == "blur":
        filled = gaussian_blur(clips, float(blur_sigma))
    else:
        mean = jnp.mean(clips.astype(jnp.float32), axis=(1, 2, 3), keepdims=True)
        if jnp.issubdtype(clips.dtype, jnp.integer):
            mean = jnp.round(mean)
        filled = jnp.broadcast_to(mean.astype(clips.dtype), clips.shape)
    return jnp.where(mask[..., None] > 0, clips, filled)


def random_keep_ids(key: jax.Array, n: int, k: int, batch: int) -> jax.Array:
    """Random-pruning baseline: k distinct tubelet ids out of n per clip, uniformly, ascending, `(batch, k)` int32."""
    if not 1 <= k <= n:
        raise ValueError(f"k must be in 1..{n}; got {k}")
    _, idx = jax.lax.top_k(jax.random.uniform(key, (batch, n)), k)  # top-k of i.i.d. noise: a uniform k-subset
    return jnp.sort(idx, axis=-1).astype(jnp.int32)


def _field(config: Any, name: str, default: Any = None) -> Any:
    if isinstance(config, Mapping):
        return config.get(name, default)
    return getattr(config, name, default)


def flops_per_clip(config: Any, keep_rates: Sequence[float] | None = None) -> int:
    """Analytic FLOPs of one clip's forward pass through the dual-token ViT (2 per multiply-add).

    Counts the matrix products: tubelet embedding, QKV, QKᵀ, attention·V, output projection, MLP, and the two
    heads. LayerNorm, softmax, GELU, scoring, top-k and fusion are omitted (O(N·D) or less per block). Pruning
    happens inside a pruning block after its attention, so that block's MLP already runs on the kept tokens.

    Args:
      config: a `DualViTConfig` or a mapping with its fields (dim, depth, mlp_ratio, tubelet, num_frames,
        image_size, prune_blocks, keep_rates, fuse, temporal_strict; optional num_classes, num_attributes).
      keep_rates: per pruning block; default the config's.

    Returns:
      FLOPs as a Python int.
    """
    dim, depth = int(_field(config, "dim")), int(_field(config, "depth"))
    hidden = int(dim * float(_field(config, "mlp_ratio", 4.0)))
    tubelet = _three("tubelet", _field(config, "tubelet"))
    size = _field(config, "image_size")
    size = (size, size) if isinstance(size, numbers.Integral) else tuple(size)
    grid = (int(_field(config, "num_frames")) // tubelet[0], size[0] // tubelet[1], size[1] // tubelet[2])
    blocks = tuple(_field(config, "prune_blocks", ()))
    rates = tuple(_field(config, "keep_rates", ()) if keep_rates is None else keep_rates)
    check_prune_config(depth, blocks, rates)
    fuse = bool(_field(config, "fuse", True))
    n_tub = math.prod(grid)
    counts = dict(zip(blocks, kept_counts(n_tub, rates, time_slots=grid[0] if _field(config, "temporal_strict")
                                          else None)))
    flops = 2 * n_tub * math.prod(tubelet) * 3 * dim
    fused = 0
    for i in range(1, depth + 1):
        n_in = NUM_CLS + n_tub + fused
        flops += 2 * n_in * dim * 4 * dim + 4 * n_in * n_in * dim  # QKV + projection; QKᵀ and attention·V
        if i in counts and counts[i] < n_tub:
            n_tub = counts[i]
            fused = 1 if fuse else 0
        flops += 4 * (NUM_CLS + n_tub + fused) * dim * hidden
    heads = int(_field(config, "num_classes", 0) or 0) + int(_field(config, "num_attributes", 0) or 0)
    return int(flops + 2 * dim * heads)
