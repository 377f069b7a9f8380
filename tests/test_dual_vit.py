"""DualViT against an independent float64 NumPy forward (with pruning and fusion), plus pruning bookkeeping,
remat, bf16, logical axes, jit tracing, bad input, and 2-D → 3-D inflation from a generated image-ViT checkpoint.

Compile time dominates on a 2-core CPU, so the module compiles few programs: the main model's parameters are
drawn with NumPy into an abstract build (no initialiser program), and shape-only checks use `nnx.eval_shape`.
"""
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from scipy.special import erf

from anonvid import pruning
from anonvid import sharding as shd
from anonvid.models.dual_vit import make_config
from anonvid.models.registry import build_model
from anonvid.models.vit_inflate import inflate_image_vit, init_from_image_vit

NUM_CLASSES, NUM_ATTRS = 4, 5
# grid (2, 4, 4) = 32 tubelets → 24 after block 1 → 18 after block 2
CFG = dict(variant="tiny", dim=32, depth=3, num_heads=2, tubelet=(2, 8, 8), num_frames=4, image_size=32,
           prune_blocks=(1, 2), keep_rates=(0.75, 0.75), lambda_priv=0.5, fuse=True)
CLIP = (2, 4, 32, 32, 3)
# strict pruning on a (2, 2, 2) grid: 2 of 4 spatial positions kept in both time slots; drop path on
SMALL = dict(variant="tiny", dim=16, depth=2, num_heads=2, tubelet=(2, 8, 8), num_frames=4, image_size=16,
             prune_blocks=(1,), keep_rates=(0.5,), temporal_strict=True, fuse=True, drop_path_rate=0.5)
SMALL_CLIP = (4, 4, 16, 16, 3)


# ------------------------------------------------------------------------------------------------------------------
# Independent NumPy reference (float64)

def _ln(x, p):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + 1e-6) * p["scale"] + p["bias"]


def _dense(x, p):
    return x @ p["kernel"] + p["bias"]


def _attention(x, p, heads):
    b, n, d = x.shape
    qkv = _dense(x, p["qkv"]).reshape(b, n, 3, heads, d // heads)
    q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
    logits = np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(d // heads)
    a = np.exp(logits - logits.max(-1, keepdims=True))
    a /= a.sum(-1, keepdims=True)
    return _dense(np.einsum("bhqk,bkhd->bqhd", a, v).reshape(b, n, d), p["proj"]), a


def _mlp(x, p):
    h = _dense(x, p["fc1"])
    return _dense(0.5 * h * (1 + erf(h / np.sqrt(2))), p["fc2"])


def _patchify(x, kernel, bias):
    """Non-overlapping (t, p, q) patches of (B, T, H, W, 3) @ kernel (t, p, q, 3, D), time-major tokens."""
    t, p, q = kernel.shape[:3]
    b, tt, hh, ww, c = x.shape
    x = x.reshape(b, tt // t, t, hh // p, p, ww // q, q, c).transpose(0, 1, 3, 5, 2, 4, 6, 7)
    return x.reshape(b, -1, t * p * q * c) @ kernel.reshape(-1, kernel.shape[-1]) + bias


def _normalise(clips, cfg):
    return (clips - np.array(cfg.pixel_mean)) / np.array(cfg.pixel_std)


def ref_forward(params, clips, cfg, keep_rates, lam, fuse):
    """The paper's forward: scores from the CLS attention rows, top-k in original order, EViT fusion."""
    tokens = _patchify(_normalise(np.asarray(clips, np.float64), cfg), params["embed"]["kernel"],
                       params["embed"]["bias"])
    b, n, _ = tokens.shape
    seq = np.concatenate([np.broadcast_to(params["cls_tokens"], (b, 2, cfg.dim)), tokens], 1) + params["pos_embed"]
    ids, fused, scores = np.tile(np.arange(n), (b, 1)), 0, []
    rates = dict(zip(cfg.prune_blocks, keep_rates))
    for i in range(cfg.depth):
        p = params["blocks"][i]
        h, a = _attention(_ln(seq, p["norm1"]), p, cfg.num_heads)
        seq = seq + h
        if i + 1 in rates:
            n_t = seq.shape[1] - 2 - fused
            rows = a[:, :, :2, 2:2 + n_t].mean(1)
            rows /= rows.sum(-1, keepdims=True)
            s = rows[:, 0] - lam * rows[:, 1]
            scores.append(s)
            k = math.ceil(round(rates[i + 1] * n_t, 6))
            if k < n_t:
                keep = np.sort(np.argsort(-s, axis=1, kind="stable")[:, :k], axis=1)
                parts = [seq[:, :2], np.take_along_axis(seq[:, 2:2 + n_t], keep[..., None], 1)]
                if fuse:
                    w = a[:, :, 0, 2:].mean(1)  # tubelets and the previous fused token, which is always re-fused
                    np.put_along_axis(w, keep, 0.0, axis=1)
                    w /= w.sum(-1, keepdims=True)
                    parts.append(np.einsum("bn,bnd->bd", w, seq[:, 2:])[:, None])
                    fused = 1
                seq, ids = np.concatenate(parts, 1), np.take_along_axis(ids, keep, 1)
        seq = seq + _mlp(_ln(seq, p["norm2"]), p)
    seq = _ln(seq, params["norm"])
    return _dense(seq[:, 0], params["action_head"]), _dense(seq[:, 1], params["privacy_head"]), ids, scores


def ref_image_vit_cls(w, images, cfg):
    """Final-LayerNorm CLS feature of a plain 2-D ViT whose weights use vit_inflate's naming scheme."""
    tokens = _patchify(_normalise(np.asarray(images, np.float64)[:, None], cfg), w["patch_embed/kernel"][None],
                       w["patch_embed/bias"])
    seq = np.concatenate([np.broadcast_to(w["cls_token"].reshape(1, 1, -1), (len(images), 1, cfg.dim)), tokens], 1)
    seq = seq + w["pos_embed"].reshape(1, -1, cfg.dim)
    for i in range(cfg.depth):
        def g(name, i=i):
            return {"kernel": w.get(f"blocks/{i}/{name}/kernel"), "bias": w[f"blocks/{i}/{name}/bias"],
                    "scale": w.get(f"blocks/{i}/{name}/scale")}

        p = {"norm1": g("norm1"), "qkv": g("attn/qkv"), "proj": g("attn/proj"), "norm2": g("norm2"),
             "fc1": g("mlp/fc1"), "fc2": g("mlp/fc2")}
        seq = seq + _attention(_ln(seq, p["norm1"]), p, cfg.num_heads)[0]
        seq = seq + _mlp(_ln(seq, p["norm2"]), p)
    return _ln(seq, {"scale": w["norm/scale"], "bias": w["norm/bias"]})[:, 0]


# ------------------------------------------------------------------------------------------------------------------
# Models and compiled programs (built once per module)

# Backend optimisation level 0 halves the CPU compile time of these small programs (measured 11 s → 6 s for the
# small model's gradient on the loaded 2-core machine); the numbers checked here do not depend on it.
FAST_COMPILE = {"xla_backend_optimization_level": 0}


def _jit(fn, **kw):
    return jax.jit(fn, compiler_options=FAST_COMPILE, **kw)


def _draw(shape, name, rng):
    """Test parameters: LN scales near 1, kernels LeCun-scaled (non-uniform attention), the rest O(0.1-0.5)."""
    if name == "scale":
        return 1.0 + 0.1 * rng.standard_normal(shape)
    if name == "kernel":
        return rng.standard_normal(shape) / np.sqrt(np.prod(shape[:-1]))
    return (0.5 if name in ("cls_tokens", "pos_embed") else 0.1) * rng.standard_normal(shape)


def _build(num_classes, kwargs, dtype="float32", seed=0):
    """A registry-built model with NumPy-drawn parameters (abstract build: no initialiser program to compile)."""
    abstract = nnx.eval_shape(lambda: build_model("dual_vit", num_classes, kwargs=kwargs, dtype=dtype))
    graph, state = nnx.split(abstract)
    rng = np.random.default_rng(seed)
    pure = jax.tree_util.tree_map_with_path(
        lambda path, a: jnp.asarray(_draw(a.shape, path[-1].key, rng), a.dtype), nnx.to_pure_dict(state))
    nnx.replace_by_pure_dict(state, pure)
    return nnx.merge(graph, state)


@pytest.fixture(scope="module")
def model():
    return _build(NUM_CLASSES, dict(CFG, num_attributes=NUM_ATTRS))


@pytest.fixture(scope="module")
def programs(model):
    """(forward with the configured pruning, forward with keep rates 1.0): jitted functions of (state, clips)."""
    graph = nnx.graphdef(model)
    forward = _jit(chex.assert_max_traces(lambda state, x: nnx.merge(graph, state)(x), n=1))
    unpruned = _jit(lambda state, x: nnx.merge(graph, state)(x, keep_rates=(1.0, 1.0)))
    return forward, unpruned


def _params64(m):
    return jax.tree.map(lambda a: np.asarray(a, np.float64), nnx.to_pure_dict(nnx.state(m, nnx.Param)))


@pytest.fixture(scope="module")
def clips():
    return jax.random.uniform(jax.random.key(1), CLIP)


# ------------------------------------------------------------------------------------------------------------------

def test_forward_matches_numpy_reference_with_pruning_and_fusion(model, programs, clips):
    forward, _ = programs
    state = nnx.state(model)
    out, aux = forward(state, clips)
    chex.assert_shape(out["action"], (2, NUM_CLASSES))
    chex.assert_shape(out["privacy"], (2, NUM_ATTRS))
    chex.assert_type([out["action"], out["privacy"]], jnp.float32)
    assert tuple(int(g) for g in aux["grid"]) == (2, 4, 4)
    assert [s.shape for s in aux["scores"]] == [(2, 32), (2, 24)]
    kept = np.asarray(aux["kept_ids"])
    assert kept.shape == (2, 18)  # ceil(0.75 · ceil(0.75 · 32))
    for row in kept:
        assert len(set(row.tolist())) == 18 and row.min() >= 0 and row.max() < 32 and np.all(np.diff(row) > 0)
    # the tubelets scored at stage 2 are those kept at stage 1
    assert set(np.asarray(aux["score_ids"][1][0]).tolist()) >= set(kept[0].tolist())

    act, priv, ids, scores = ref_forward(_params64(model), clips, model.config, (0.75, 0.75), 0.5, True)
    np.testing.assert_array_equal(kept, ids)
    for got, want in zip(aux["scores"], scores):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out["action"], act, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out["privacy"], priv, rtol=1e-4, atol=1e-4)
    # jit: new values of the same shape do not retrace (assert_max_traces would raise)
    forward(state, clips[::-1])


def test_keep_rates_one_equals_unpruned_forward(model, programs, clips):
    forward, unpruned = programs
    out, aux = unpruned(nnx.state(model), clips)
    act, priv, _, _ = ref_forward(_params64(model), clips, model.config, (1.0, 1.0), 0.5, True)
    np.testing.assert_array_equal(aux["kept_ids"], np.tile(np.arange(32), (2, 1)))
    np.testing.assert_allclose(out["action"], act, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out["privacy"], priv, rtol=1e-4, atol=1e-4)
    # and it differs from the pruned forward (pruning really changes the computation)
    assert not np.allclose(out["action"], forward(nnx.state(model), clips)[0]["action"], atol=1e-3)


def test_fusion_on_off_and_overrides_shapes(model):
    x = jax.ShapeDtypeStruct(CLIP, jnp.float32)
    for fuse in (True, False):
        out, aux = nnx.eval_shape(lambda m, x, fuse=fuse: m(x, fuse=fuse), model, x)
        assert out["action"].shape == (2, NUM_CLASSES) and aux["kept_ids"].shape == (2, 18)
    _, aux = nnx.eval_shape(lambda m, x: m(x, keep_rates=(0.5, 0.9), lambda_priv=2.0), model, x)
    assert aux["kept_ids"].shape == (2, math.ceil(0.9 * 16))
    assert [s.shape for s in aux["scores"]] == [(2, 32), (2, 16)]


def test_logical_axes_on_params(model):
    specs = nnx.to_pure_dict(nnx.get_partition_spec(nnx.state(model, nnx.Param)))

    def names(*path):
        return tuple(_walk(specs, path))

    assert names("embed", "kernel") == (None, None, None, "conv_in", "conv_out")
    assert names("cls_tokens") == (None, None, "embed")
    assert names("pos_embed") == (None, "tokens", "embed")
    assert names("blocks", 0, "qkv", "kernel") == ("embed", "heads")
    assert names("blocks", 0, "proj", "kernel") == ("heads", "embed")
    assert names("blocks", 2, "fc1", "kernel") == ("embed", "mlp")
    assert names("blocks", 2, "fc2", "kernel") == ("mlp", "embed")
    assert names("blocks", 1, "norm1", "scale") == ("embed",)
    assert names("norm", "bias") == ("embed",)
    assert names("action_head", "kernel") == ("embed", None)
    assert names("privacy_head", "kernel") == ("embed", None)
    # every parameter is annotated, and every name has a rule in the default table
    leaves = jax.tree.leaves(specs, is_leaf=lambda s: isinstance(s, jax.sharding.PartitionSpec))
    assert leaves and all(len(s) for s in leaves)
    mesh = shd.make_mesh((("data", -1), ("model", 1)))
    shd.state_shardings(nnx.state(model, nnx.Param), mesh, shd.DEFAULT_RULES)
    # the real initialiser (abstractly): float32 parameters of the configured shapes under bfloat16 compute
    real = nnx.eval_shape(lambda: build_model("dual_vit", 3, kwargs=SMALL, dtype="bfloat16"))
    assert {a.dtype for a in jax.tree.leaves(nnx.state(real, nnx.Param))} == {jnp.dtype(jnp.float32)}


def _walk(tree, path):
    for p in path:
        tree = tree[p]
    return tree


# ------------------------------------------------------------------------------------------------------------------
# Remat, stochastic depth, temporally strict pruning, bf16 (small model)

def _loss(state, x, key, graph):
    out, aux = nnx.merge(graph, state)(x, train=True, key=key)
    w = jnp.arange(1.0, 1.0 + out["action"].size).reshape(out["action"].shape)
    return jnp.sum(w * out["action"]) + jnp.sum(jnp.sin(out["privacy"])), (out, aux["kept_ids"])


GRAD = _jit(jax.value_and_grad(_loss, has_aux=True), static_argnums=3)


@pytest.fixture(scope="module")
def small_run():
    m = _build(3, SMALL)
    x = jax.random.uniform(jax.random.key(2), SMALL_CLIP)
    state = nnx.state(m)
    return m, state, x, GRAD(state, x, jax.random.key(4), nnx.graphdef(m))


def test_remat_same_outputs_and_grads(small_run):
    m, state, x, ((loss0, (out0, ids0)), g0) = small_run
    m.remat = True
    graph = nnx.graphdef(m)
    m.remat = False
    jaxpr = str(jax.make_jaxpr(lambda s: _loss(s, x, jax.random.key(4), graph)[0])(state))
    assert "checkpoint" in jaxpr or "remat" in jaxpr
    (loss1, (out1, ids1)), g1 = GRAD(state, x, jax.random.key(4), graph)
    np.testing.assert_array_equal(ids0, ids1)
    # equal up to float32 reassociation (the rematerialised program fuses differently)
    np.testing.assert_allclose(loss0, loss1, rtol=1e-5)
    chex.assert_trees_all_close(out0, out1, rtol=1e-5, atol=1e-5)
    chex.assert_trees_all_close(g0, g1, rtol=1e-4, atol=1e-5)
    assert all(np.any(np.asarray(g) != 0) for g in jax.tree.leaves(g0))


def test_temporally_strict_keeps_identical_spatial_sets(small_run):
    _, _, _, ((_, (_, ids)), _) = small_run
    ids = np.asarray(ids)
    assert ids.shape == (4, 4)  # 2 time slots × ceil(0.5 · 4) spatial positions
    spatial = ids.reshape(4, 2, 2) % 4  # grid (2, 2, 2): 4 spatial positions per slot
    np.testing.assert_array_equal(spatial[:, 0], spatial[:, 1])
    np.testing.assert_array_equal(ids.reshape(4, 2, 2) // 4, np.broadcast_to([[0, 0], [1, 1]], (4, 2, 2)))


def test_bf16_compute_with_f32_params(small_run):
    _, _, x, ((_, (out32, ids32)), _) = small_run
    m = _build(3, SMALL, dtype="bfloat16")  # same seed: the same float32 parameters as the float32 model
    assert {a.dtype for a in jax.tree.leaves(nnx.state(m, nnx.Param))} == {jnp.dtype(jnp.float32)}
    graph, state = nnx.split(m)

    def run(s, x):
        return nnx.merge(graph, s)(x, train=True, key=jax.random.key(4))

    dots = [e for e in _eqns(jax.make_jaxpr(run)(state, x).jaxpr) if e.primitive.name == "dot_general"]
    assert dots and all(v.aval.dtype == jnp.bfloat16 for e in dots for v in e.invars)
    out, aux = _jit(run)(state, x)
    chex.assert_type([out["action"], out["privacy"]], jnp.float32)
    chex.assert_tree_all_finite(out)
    np.testing.assert_array_equal(aux["kept_ids"], ids32)
    chex.assert_trees_all_close(out, out32, atol=0.1, rtol=0.05)  # bfloat16 keeps ~3 significant digits


def _eqns(jaxpr):
    """All equations of a jaxpr, including those of nested jaxprs (pjit, custom_vjp, ...)."""
    for e in jaxpr.eqns:
        yield e
        for v in e.params.values():
            for sub in (v if isinstance(v, (tuple, list)) else (v,)):
                if hasattr(sub, "eqns"):
                    yield from _eqns(sub)
                elif hasattr(sub, "jaxpr") and hasattr(sub.jaxpr, "eqns"):
                    yield from _eqns(sub.jaxpr)


# ------------------------------------------------------------------------------------------------------------------

def test_errors(model):
    def x(*shape):
        return jax.ShapeDtypeStruct(shape, jnp.float32)

    def call(clip, **kw):
        return nnx.eval_shape(lambda m, c: m(c, **kw), model, clip)

    with pytest.raises(ValueError, match=r"T \(frames\) = 5 is not a positive multiple of the tubelet size 2"):
        call(x(2, 5, 32, 32, 3))
    with pytest.raises(ValueError, match=r"H \(height\) = 30 .* crop or resize it to 24"):
        call(x(2, 4, 30, 32, 3))
    with pytest.raises(ValueError, match=r"W \(width\) = 36"):
        call(x(2, 4, 32, 36, 3))
    with pytest.raises(ValueError, match="differs from the size the position embedding was built for"):
        call(x(2, 8, 32, 32, 3))
    with pytest.raises(ValueError, match=r"\(B, T, H, W, 3\)"):
        call(x(2, 4, 32, 32))
    for rates in ((0.0, 0.9), (0.9, 1.2)):
        with pytest.raises(ValueError, match=r"outside \(0, 1\]"):
            call(x(*CLIP), keep_rates=rates)
    with pytest.raises(ValueError, match="one rate per pruning block"):
        call(x(*CLIP), keep_rates=(0.9,))
    with pytest.raises(ValueError, match="lambda_priv must be a finite number >= 0"):
        call(x(*CLIP), lambda_priv=-0.1)
    with pytest.raises(ValueError, match="fuse must be a Python bool"):
        call(x(*CLIP), fuse=1)
    small = nnx.eval_shape(lambda: build_model("dual_vit", 3, kwargs=SMALL))
    with pytest.raises(ValueError, match="needs a PRNG key"):
        nnx.eval_shape(lambda m, c: m(c, train=True), small, x(*SMALL_CLIP))
    # at construction
    with pytest.raises(ValueError, match=r"block index 4 is outside 1..3"):
        make_config(3, **dict(CFG, prune_blocks=(1, 4)))
    with pytest.raises(ValueError, match=r"block index 0 is outside 1..3"):
        make_config(3, **dict(CFG, prune_blocks=(0, 2)))
    with pytest.raises(ValueError, match=r"outside \(0, 1\]"):
        make_config(3, **dict(CFG, keep_rates=(0.9, -0.5)))
    with pytest.raises(ValueError, match="lambda_priv must be a finite number >= 0"):
        make_config(3, **dict(CFG, lambda_priv=-1.0))
    with pytest.raises(ValueError, match=r"config num_frames/image_size: T \(frames\) = 5"):
        make_config(3, **dict(CFG, num_frames=5))
    with pytest.raises(ValueError, match="unknown dual_vit variant 'huge'"):
        make_config(3, variant="huge")
    with pytest.raises(ValueError, match="bad arguments.*unknown dual_vit field"):
        nnx.eval_shape(lambda: build_model("dual_vit", 3, kwargs=dict(depht=3)))
    small, base = make_config(3, "small"), make_config(3, "base")
    assert (small.dim, small.depth, small.num_heads, small.grid) == (384, 12, 6, (8, 14, 14))
    assert (base.dim, base.depth, base.num_heads, base.num_tubelets) == (768, 12, 12, 1568)
    # FLOPs from a model config: the paper's pruning (0.9 at blocks 3, 6, 9) saves about a fifth of ViT-B's compute
    ratio = pruning.flops_per_clip(base) / pruning.flops_per_clip(base, keep_rates=(1.0, 1.0, 1.0))
    assert 0.7 < ratio < 0.85


# ------------------------------------------------------------------------------------------------------------------
# 2-D → 3-D inflation

def test_inflated_image_vit_on_identical_frames_equals_the_image_model(model, programs, tmp_path):
    """What is compared: with T' = 2 time slots (4 identical frames, tubelet t = 2), the video model's action and
    privacy logits equal its own heads applied to the image ViT's final-LN CLS feature of that frame.

    Why exactly: each tubelet of identical frames embeds as the image patch (kernel / t summed over t taps), the
    position table repeats per slot, and both CLS tokens equal the image CLS. So every distinct key appears
    exactly twice (2 CLS copies, 2 time copies of each patch); softmax weights are unchanged by a uniform
    duplication, block by block. With T' ≠ 2 the CLS copies (2) and patch copies (T') are weighted differently
    and the outputs differ — that is the CLS/pos-emb change of the 2-D → 3-D initialisation, not tested here.
    """
    cfg = model.config
    rng = np.random.default_rng(5)
    d, m = cfg.dim, int(cfg.dim * cfg.mlp_ratio)
    shapes = {"patch_embed/kernel": (8, 8, 3, d), "patch_embed/bias": (d,), "cls_token": (1, 1, d),
              "pos_embed": (1, 17, d), "norm/scale": (d,), "norm/bias": (d,), "head/kernel": (d, 10),
              "head/bias": (10,)}
    for i in range(cfg.depth):
        shapes.update({f"blocks/{i}/norm1/scale": (d,), f"blocks/{i}/norm1/bias": (d,),
                       f"blocks/{i}/attn/qkv/kernel": (d, 3 * d), f"blocks/{i}/attn/qkv/bias": (3 * d,),
                       f"blocks/{i}/attn/proj/kernel": (d, d), f"blocks/{i}/attn/proj/bias": (d,),
                       f"blocks/{i}/norm2/scale": (d,), f"blocks/{i}/norm2/bias": (d,),
                       f"blocks/{i}/mlp/fc1/kernel": (d, m), f"blocks/{i}/mlp/fc1/bias": (m,),
                       f"blocks/{i}/mlp/fc2/kernel": (m, d), f"blocks/{i}/mlp/fc2/bias": (d,)})
    names = {"cls_token": "cls_tokens", "pos_embed": "pos_embed"}
    weights = {k: _draw(s, names.get(k, k.rsplit("/", 1)[-1]), rng).astype(np.float32) for k, s in shapes.items()}
    np.savez(tmp_path / "vit.npz", **weights)

    video = nnx.clone(model)
    assert init_from_image_vit(video, tmp_path / "vit.npz") == ["head/bias", "head/kernel"]
    p = _params64(video)
    np.testing.assert_allclose(p["embed"]["kernel"][0], weights["patch_embed/kernel"] / 2, rtol=1e-6)
    np.testing.assert_array_equal(p["embed"]["kernel"][0], p["embed"]["kernel"][1])
    pos = p["pos_embed"][0]
    np.testing.assert_array_equal(pos[0], weights["pos_embed"][0, 0])
    np.testing.assert_array_equal(pos[1], weights["pos_embed"][0, 0])
    np.testing.assert_array_equal(pos[2:18], weights["pos_embed"][0, 1:])
    np.testing.assert_array_equal(pos[18:], weights["pos_embed"][0, 1:])

    frames = rng.uniform(size=(2, 32, 32, 3)).astype(np.float32)
    out, _ = programs[1](nnx.state(video), jnp.asarray(np.repeat(frames[:, None], 4, axis=1)))
    cls = ref_image_vit_cls({k: v.astype(np.float64) for k, v in weights.items()}, frames, cfg)
    np.testing.assert_allclose(out["action"], _dense(cls, p["action_head"]), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out["privacy"], _dense(cls, p["privacy_head"]), rtol=1e-4, atol=1e-4)

    bad = dict(weights, pos_embed=weights["pos_embed"][:, :10])
    with pytest.raises(ValueError, match="9 patch positions but the video model's spatial grid is 4×4"):
        inflate_image_vit(nnx.clone(model), bad)
    with pytest.raises(KeyError, match="lacks 'norm/scale'"):
        inflate_image_vit(nnx.clone(model), {k: v for k, v in weights.items() if k != "norm/scale"})
