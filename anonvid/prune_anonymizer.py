"""Tubelet pruning as an anonymizer (METHODS.md A): a trained dual-token ViT turns clips into anonymized clips.

The model scores and prunes tubelets as in training; the tubelets kept by every pruning stage stay, the others
are filled (black, as the paper; or blurred, or the clip's mean colour). The result plugs into the
fresh-attacker protocol (`anonvid.protocols.leakage`) as an `Anonymizer` and is what
`anonvid anonymize --method prune` will call.

Also here: the two masking baselines the method is compared with at the protocol level — random pruning of the
same number of tubelets, and blackening a ground-truth mask (the actor, on the synthetic benchmark). They are
split-level anonymizers: they need a per-clip random draw or per-clip masks, not just the pixels.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from anonvid import pruning
from anonvid.protocols import leakage

_CHUNK = 64  # clips per jitted call of the split-level baselines


def prune_clips(model: nnx.Module, clips: jax.Array, *, keep_rates: Sequence[float] | None = None,
                lambda_priv: float | None = None, fuse: bool | None = None, fill: str = "black",
                blur_sigma: float = 8.0) -> tuple[jax.Array, dict[str, Any]]:
    """Scores, prunes and fills the tubelets of `clips` with a trained `DualViT`.

    Args:
      model: the trained model (eval mode; see `anonvid.trainers.dual_vit.load_pruner`).
      clips: float `(B, T, H, W, 3)` in [0, 1] of the size the model was built for.
      keep_rates, lambda_priv, fuse: overrides of the model config's pruning settings (keep rates are static).
      fill: "black" (paper), "blur" or "mean" for the pruned tubelets.
      blur_sigma: blur σ in pixels for fill "blur".

    Returns:
      `(anonymized clips, aux)` with the model's aux (scores, score_ids, kept_ids, grid) plus `mask`, the
      `(B, T, H, W)` kept-pixel mask.
    """
    _, aux = model(clips, keep_rates=keep_rates, lambda_priv=lambda_priv, fuse=fuse)
    cfg = model.config
    mask = pruning.kept_ids_to_mask(aux["kept_ids"], aux["grid"], cfg.tubelet, clips.shape[1:4])
    return pruning.apply_mask(clips, mask, fill, blur_sigma=blur_sigma), {**aux, "mask": mask}


def make_anonymizer(model: nnx.Module, **options: Any) -> leakage.Anonymizer:
    """`prune_clips` as a clips → clips anonymizer (options as `prune_clips`), checked once up front."""
    if options.get("keep_rates") is not None:
        pruning.check_prune_config(model.config.depth, model.config.prune_blocks, options["keep_rates"])
    if options.get("lambda_priv") is not None:
        pruning.check_lambda_priv(options["lambda_priv"])
    if options.get("fill", "black") not in pruning.FILLS:
        raise ValueError(f"unknown fill {options['fill']!r}; use one of {pruning.FILLS}")

    def anonymize(clips: jax.Array) -> jax.Array:
        return prune_clips(model, clips, **options)[0]

    return anonymize


def from_checkpoint(workdir: str, **options: Any) -> leakage.Anonymizer:
    """The anonymizer of a trained pruner run's folder (latest checkpoint); options as `prune_clips`."""
    from anonvid.trainers.dual_vit import load_pruner

    return make_anonymizer(load_pruner(workdir), **options)


def kept_tubelets(model: nnx.Module, keep_rates: Sequence[float] | None = None) -> int:
    """How many tubelets survive every pruning stage (a static count)."""
    stages = model.stages(keep_rates)
    return min([s.keep for s in stages.values()] + [model.config.num_tubelets])


def _split_video(split: Mapping[str, np.ndarray]) -> np.ndarray:
    video = np.asarray(split["video"])
    if video.ndim != 5 or video.dtype != np.uint8:
        raise ValueError(f"expected uint8 clips (N, T, H, W, 3); got {video.shape} {video.dtype}")
    return video


def random_pruning(*, grid: Sequence[int], tubelet: Sequence[int], keep: int, seed: int = 0,
                   fill: str = "black") -> leakage.SplitAnonymizer:
    """Random-pruning baseline: every clip keeps `keep` tubelets drawn uniformly (its own draw per clip).

    The draw depends on (seed, split name, clip index) only, so reruns give the same clips.
    """
    grid, tubelet = tuple(int(g) for g in grid), tuple(int(t) for t in tubelet)
    n = int(np.prod(grid))
    if not 1 <= keep <= n:
        raise ValueError(f"keep must be in 1..{n}; got {keep}")

    @jax.jit
    def chunk_fn(key, clips):
        ids = pruning.random_keep_ids(key, n, keep, clips.shape[0])
        mask = pruning.kept_ids_to_mask(ids, grid, tubelet, clips.shape[1:4], dtype=jnp.uint8)
        return pruning.apply_mask(clips, mask, fill)

    def anonymize(split: Mapping[str, np.ndarray], name: str) -> dict:
        video = _split_video(split)
        base = jax.random.fold_in(jax.random.key(seed), sum(map(ord, name)))
        out = [np.asarray(chunk_fn(jax.random.fold_in(base, start), video[start:start + _CHUNK]))
               for start in range(0, len(video), _CHUNK)]
        return {**split, "video": np.concatenate(out)}

    return anonymize


def mask_blackening(mask_key: str = "action_mask", *, dilate: int = 0) -> leakage.SplitAnonymizer:
    """Blackens the pixels of a ground-truth mask in every clip (on the synthetic benchmark: the actor).

    Args:
      mask_key: the split's `(N, T, H, W)` mask array (non-zero = blacken).
      dilate: grow the mask by this many pixels (a square structuring element) to cover anti-aliased edges.
    """

    def anonymize(split: Mapping[str, np.ndarray], name: str) -> dict:
        video = _split_video(split)
        if mask_key not in split:
            raise ValueError(f"split {name!r} has no {mask_key!r} ground-truth mask; it has {sorted(split)}")
        mask = np.asarray(split[mask_key]) != 0
        if mask.shape != video.shape[:4]:
            raise ValueError(f"{mask_key} has shape {mask.shape}; expected {video.shape[:4]}")
        if dilate:
            padded = np.pad(mask, ((0, 0), (0, 0), (dilate, dilate), (dilate, dilate)))
            h, w = mask.shape[2:]
            mask = np.zeros_like(mask)
            for dy in range(2 * dilate + 1):
                for dx in range(2 * dilate + 1):
                    mask |= padded[:, :, dy:dy + h, dx:dx + w]
        return {**split, "video": np.where(mask[..., None], np.uint8(0), video)}

    return anonymize
