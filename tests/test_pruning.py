"""anonvid.pruning against hand-worked cases: scores, keep counts, top-k, fusion, masks, fills, strictness, FLOPs."""
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from anonvid import pruning
from anonvid.minimize import gaussian_blur


def _jit(fn, **static):
    """One compiled program per call: eager mode would compile every primitive separately (seconds on 2 cores)."""
    return jax.jit(functools.partial(fn, **static))


def _attn(rows_act, rows_priv, n):
    """(1, heads, n, n) attention whose CLS rows are given per head (other rows uniform)."""
    a = np.full((1, len(rows_act), n, n), 1.0 / n)
    a[0, :, 0] = rows_act
    a[0, :, 1] = rows_priv
    return jnp.asarray(a, jnp.float32)


def test_cls_attention_head_mean_and_l1_normalisation():
    # 2 CLS + 3 tubelets, two heads; tubelet columns 2..4.
    act = [[.1, .1, .2, .2, .4], [.3, .1, .1, .3, .2]]
    priv = [[.2, .2, .3, .3, 0.], [.0, .4, .1, .1, .4]]
    a_act, a_priv = jax.jit(pruning.cls_attention)(_attn(act, priv, 5))
    # head mean over tubelets: act (.15, .25, .3) / .7; priv (.2, .2, .2) / .6
    np.testing.assert_allclose(a_act, [[3 / 14, 5 / 14, 6 / 14]], rtol=1e-6)
    np.testing.assert_allclose(a_priv, [[1 / 3, 1 / 3, 1 / 3]], rtol=1e-6)
    # a fused token (last column) is excluded like the CLS columns
    act_f = [[.1, .1, .2, .2, .1, .3], [.3, .1, .1, .3, .1, .1]]
    priv_f = [[.2, .2, .3, .3, .0, .0], [.0, .4, .1, .1, .2, .2]]
    a_act, a_priv = _jit(pruning.cls_attention, num_fused=1)(_attn(act_f, priv_f, 6))
    np.testing.assert_allclose(a_act, [[.15 / .5, .25 / .5, .1 / .5]], rtol=1e-6)
    np.testing.assert_allclose(a_priv, [[.2 / .5, .2 / .5, .1 / .5]], rtol=1e-6)  # (.2, .2, .1) / .5


def test_score_sign_and_lambda():
    a_act = jnp.array([[.5, .3, .2]])
    a_priv = jnp.array([[.1, .6, .3]])
    np.testing.assert_allclose(pruning.tubelet_scores(a_act, a_priv, 0.5), [[.45, 0., .05]], atol=1e-7)
    # the privacy-heavy tubelet scores lowest, so it is the first to go
    assert int(jnp.argmin(pruning.tubelet_scores(a_act, a_priv, 0.5))) == 1
    np.testing.assert_allclose(pruning.tubelet_scores(a_act, a_priv, 0.0), a_act)
    # lambda_priv may be traced (a sweep without recompiling)
    f = jax.jit(pruning.tubelet_scores)
    np.testing.assert_allclose(f(a_act, a_priv, 2.0), [[.3, -.9, -.4]], atol=1e-6)


def test_keep_counts_are_ceil_and_static():
    assert pruning.keep_count(10, 0.9) == 9
    assert pruning.keep_count(10, 0.7) == 7  # 0.7 * 10 = 7.000000000000001 in floating point
    assert pruning.keep_count(10, 0.75) == 8  # ceil(7.5)
    assert pruning.keep_count(1568, 0.9) == 1412  # ceil(1411.2)
    assert pruning.keep_count(3, 0.1) == 1
    assert pruning.keep_count(5, 1.0) == 5
    # paper: 0.9 at three blocks keeps ≈73% of 1568 tubelets
    assert pruning.kept_counts(1568, (0.9, 0.9, 0.9)) == (1412, 1271, 1144)
    assert round(1144 / 1568, 2) == 0.73
    # temporally strict: whole spatial columns of 8 slots × 196 positions (196 → 177 → 160 → 144)
    assert pruning.kept_counts(1568, (0.9, 0.9, 0.9), time_slots=8) == (8 * 177, 8 * 160, 8 * 144)


def test_top_k_keep_ids_order_and_ties():
    scores = jnp.array([[.1, .5, .3, .9], [.4, .4, .2, .1]])
    ids = jnp.array([[10, 11, 12, 13], [20, 21, 22, 23]])
    tokens = ids[..., None].astype(jnp.float32) * jnp.ones((1, 1, 3))
    kept, kept_ids, pos = _jit(pruning.top_k_keep, k=2)(tokens, scores, ids)
    np.testing.assert_array_equal(pos, [[1, 3], [0, 1]])
    np.testing.assert_array_equal(kept_ids, [[11, 13], [20, 21]])
    np.testing.assert_array_equal(kept[..., 0], kept_ids)
    _, kept_ids, _ = _jit(pruning.top_k_keep, k=3, order="score")(tokens, scores, ids)
    np.testing.assert_array_equal(kept_ids, [[13, 11, 12], [20, 21, 22]])  # ties: the lower position first


def test_fusion_weights_normalised_over_dropped_set():
    tokens = jnp.array([[[1., 0.], [0., 1.], [2., 2.], [4., 0.]]])
    weights = jnp.array([[.1, .2, .3, .1]])
    kept = jnp.array([[True, False, True, False]])
    fuse = jax.jit(pruning.fuse_dropped)
    fused = fuse(tokens, weights, kept)
    chex.assert_shape(fused, (1, 1, 2))
    # dropped: tokens 1 (w .2) and 3 (w .1) → weights 2/3, 1/3
    np.testing.assert_allclose(fused[0, 0], [4 / 3, 2 / 3], rtol=1e-6)
    # scale-free: any positive multiple of the weights fuses the same token
    np.testing.assert_allclose(fuse(tokens, 7 * weights, kept), fused, rtol=1e-6)
    # nothing dropped → zero token
    np.testing.assert_array_equal(fuse(tokens, weights, jnp.ones_like(kept)), 0.0)


def test_positions_to_mask():
    m = _jit(pruning.positions_to_mask, n=4)(jnp.array([[0, 2], [3, 1]]))
    np.testing.assert_array_equal(m, [[1, 0, 1, 0], [0, 1, 0, 1]])


def test_kept_ids_to_pixel_mask_on_2x2x2_grid():
    grid, tubelet, clip = (2, 2, 2), (2, 1, 2), (4, 2, 4)
    kept = jnp.array([[0, 3, 5], [7, 1, 2]])
    mask = _jit(pruning.kept_ids_to_mask, grid=grid, tubelet=tubelet, clip_shape=clip)(kept)
    chex.assert_shape(mask, (2, 4, 2, 4))
    expected = np.zeros((2, 4, 2, 4))
    for b in range(2):
        for t in range(4):
            for h in range(2):
                for w in range(4):
                    tid = ((t // 2) * 2 + h // 1) * 2 + w // 2  # time-major tubelet id
                    expected[b, t, h, w] = tid in set(np.asarray(kept[b]).tolist())
    np.testing.assert_array_equal(mask, expected)
    # tubelet 0 covers frames 0-1, row 0, columns 0-1; id 3 = (t 0, h 1, w 1)
    np.testing.assert_array_equal(mask[0, 0], [[1, 1, 0, 0], [0, 0, 1, 1]])
    np.testing.assert_array_equal(mask[0, 2], [[0, 0, 1, 1], [0, 0, 0, 0]])  # id 5 = (t 1, h 0, w 1)


def test_fills():
    rng = np.random.default_rng(0)
    clips = jnp.asarray(rng.integers(0, 256, (2, 2, 8, 8, 3)), jnp.uint8)
    mask = jnp.asarray(rng.integers(0, 2, (2, 2, 8, 8)), jnp.float32)
    keep = np.asarray(mask)[..., None] > 0
    black = _jit(pruning.apply_mask, fill="black")(clips, mask)
    assert black.dtype == jnp.uint8
    np.testing.assert_array_equal(black, np.where(keep, clips, 0))
    mean = _jit(pruning.apply_mask, fill="mean")(clips, mask)
    clip_mean = np.round(np.asarray(clips, np.float64).mean(axis=(1, 2, 3), keepdims=True))
    np.testing.assert_array_equal(mean, np.where(keep, clips, np.broadcast_to(clip_mean, clips.shape)))
    blur = _jit(pruning.apply_mask, fill="blur", blur_sigma=2.0)(clips, mask)
    np.testing.assert_array_equal(blur, np.where(keep, clips, jax.jit(gaussian_blur, static_argnums=1)(clips, 2.0)))
    # float clips: black fill is 0.0, kept pixels untouched
    f = clips.astype(jnp.float32) / 255
    np.testing.assert_array_equal(_jit(pruning.apply_mask)(f, mask), np.where(keep, f, 0.0))


def test_temporally_strict_keeps_the_same_spatial_positions_in_every_slot():
    # T' = 2 slots × 4 spatial positions; pooled over time: (.3, .5, .2, .15)
    scores = jnp.array([[.1, .9, .2, .3, .5, .1, .2, .0]])
    np.testing.assert_allclose(_jit(pruning.temporally_strict, grid=(2, 2, 2))(scores), [[.3, .5, .2, .15]], rtol=1e-6)
    ids = jnp.arange(8)[None]
    tokens = ids[..., None].astype(jnp.float32)
    _, kept_ids, _ = _jit(pruning.top_k_keep_strict, k_spatial=2, time_slots=2)(tokens, scores, ids)
    np.testing.assert_array_equal(kept_ids, [[0, 1, 4, 5]])
    slots = np.asarray(kept_ids).reshape(2, -1) % 4
    np.testing.assert_array_equal(slots[0], slots[1])
    # the per-tubelet top-4 would keep different spatial sets per slot: {1, 2, 3} and {0}
    _, loose, _ = _jit(pruning.top_k_keep, k=4)(tokens, scores, ids)
    np.testing.assert_array_equal(loose, [[1, 2, 3, 4]])


def test_random_keep_ids_distinct_and_k_of_them():
    draw = _jit(pruning.random_keep_ids, n=50, k=17, batch=4)
    ids = draw(jax.random.key(0))
    chex.assert_shape(ids, (4, 17))
    assert ids.dtype == jnp.int32
    a = np.asarray(ids)
    for row in a:
        assert len(set(row.tolist())) == 17 and row.min() >= 0 and row.max() < 50
        assert np.all(np.diff(row) > 0)
    assert len({tuple(r) for r in a.tolist()}) == 4  # clips get different subsets
    np.testing.assert_array_equal(draw(jax.random.key(0)), ids)


def test_flops_hand_worked_and_vit_b():
    # dim 4, depth 2, MLP 8, 2 tubelets of 1×1×1 → 4 tokens per block:
    # embed 2·2·3·4 = 48; per block QKV+proj 2·4·4·16 = 512, QKᵀ+AV 4·16·4 = 256, MLP 4·4·4·8 = 512 → 1280;
    # heads 2·4·(3 + 2) = 40.
    cfg = dict(dim=4, depth=2, mlp_ratio=2.0, tubelet=(1, 1, 1), num_frames=1, image_size=(1, 2), prune_blocks=(),
               keep_rates=(), fuse=True, temporal_strict=False, num_classes=3, num_attributes=2)
    assert pruning.flops_per_clip(cfg) == 48 + 2 * 1280 + 40
    # 4 tubelets, block 1 keeps 2 and fuses 2: embed 96; block 1: attention on 6 tokens 768 + 576, MLP on 5 → 640;
    # block 2 on 5 tokens: 640 + 400 + 640.
    cfg.update(image_size=(2, 2), prune_blocks=(1,), keep_rates=(0.5,), num_classes=0, num_attributes=0)
    assert pruning.flops_per_clip(cfg) == 96 + (768 + 576 + 640) + (640 + 400 + 640)
    assert pruning.flops_per_clip(cfg, keep_rates=(1.0,)) == 96 + 2 * (2 * 6 * 4 * 16 + 4 * 36 * 4 + 4 * 6 * 4 * 8)
    # ViT-B, 16×224², 2×16×16 tubelets: VideoMAE reports 180 G multiply-adds = 360 GFLOPs
    vit_b = dict(dim=768, depth=12, mlp_ratio=4.0, tubelet=(2, 16, 16), num_frames=16, image_size=224,
                 prune_blocks=(3, 6, 9), keep_rates=(1.0, 1.0, 1.0), fuse=True)
    full = pruning.flops_per_clip(vit_b)
    assert 355e9 < full < 365e9
    assert pruning.flops_per_clip(vit_b, keep_rates=(0.9, 0.9, 0.9)) < 0.85 * full


def test_bad_inputs():
    for rate in (0.0, -0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="outside \\(0, 1\\]"):
            pruning.keep_count(10, rate)
    with pytest.raises(ValueError, match="Python number"):
        pruning.keep_count(10, jnp.float32(0.5))
    with pytest.raises(ValueError, match="positive int"):
        pruning.keep_count(0, 0.5)
    with pytest.raises(ValueError, match="block index 0 is outside 1..12"):
        pruning.check_prune_config(12, (0, 6), (0.9, 0.9))
    with pytest.raises(ValueError, match="block index 13 is outside 1..12"):
        pruning.check_prune_config(12, (3, 13), (0.9, 0.9))
    with pytest.raises(ValueError, match="strictly increasing"):
        pruning.check_prune_config(12, (6, 3), (0.9, 0.9))
    with pytest.raises(ValueError, match="one rate per pruning block"):
        pruning.check_prune_config(12, (3, 6), (0.9,))
    with pytest.raises(ValueError, match="outside \\(0, 1\\]"):
        pruning.check_prune_config(12, (3,), (1.2,))
    a = jnp.ones((1, 3))
    for lam in (-0.5, float("nan")):
        with pytest.raises(ValueError, match="lambda_priv must be a finite number >= 0"):
            pruning.tubelet_scores(a, a, lam)
    with pytest.raises(ValueError, match=r"\(B, heads, N, N\)"):
        pruning.cls_attention(jnp.ones((1, 2, 4, 5)))
    with pytest.raises(ValueError, match="no tubelet tokens"):
        pruning.cls_attention(jnp.ones((1, 2, 3, 3)), num_fused=1)
    tokens, ids = jnp.ones((1, 3, 2)), jnp.zeros((1, 3), jnp.int32)
    for k in (0, 4):
        with pytest.raises(ValueError, match="k must be a Python int in 1..3"):
            pruning.top_k_keep(tokens, a, ids, k)
    with pytest.raises(ValueError, match="order"):
        pruning.top_k_keep(tokens, a, ids, 1, order="random")
    with pytest.raises(ValueError, match="time slots"):
        pruning.temporally_strict(a, (2,))
    with pytest.raises(ValueError, match="does not cover the clip"):
        pruning.kept_ids_to_mask(ids, (2, 2, 2), (2, 2, 2), (4, 4, 5))
    clips = jnp.zeros((1, 2, 4, 4, 3))
    with pytest.raises(ValueError, match="unknown fill 'pixelate'"):
        pruning.apply_mask(clips, jnp.ones((1, 2, 4, 4)), "pixelate")
    with pytest.raises(ValueError, match="mask"):
        pruning.apply_mask(clips, jnp.ones((1, 2, 4, 5)))
    with pytest.raises(ValueError, match="k must be in 1..5"):
        pruning.random_keep_ids(jax.random.key(0), 5, 6, 1)
