"""The PyTorch benchmark peer (`bench/peers/torch_dual_vit.py`) computes what anonvid's DualViT computes.

With anonvid's parameters copied in, the peer must give the same action/privacy logits and the same kept tubelets
(with fusion on and off), and the same gradients of the training loss (CE on actions + BCE on privacy
attributes): the train-step benchmark then compares like with like. Skipped when torch is not installed (it is
only in the `[bench]` extra).
"""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

torch = pytest.importorskip("torch")

from anonvid.models.registry import build_model
from bench.peers.torch_dual_vit import TorchDualViT, copy_from_anonvid

NUM_CLASSES, NUM_ATTRS = 4, 5
# grid (2, 4, 4) = 32 tubelets; two pruning blocks so that the fused token is re-fused
CFG = {"variant": "tiny", "dim": 32, "depth": 2, "num_heads": 2, "tubelet": (2, 8, 8), "num_frames": 4,
       "image_size": 32, "prune_blocks": (1, 2), "keep_rates": (0.75, 0.75), "lambda_priv": 0.5, "fuse": True,
       "drop_path_rate": 0.0}
CLIP = (2, 4, 32, 32, 3)
FAST_COMPILE = {"xla_backend_optimization_level": 0}  # halves compile time; the numbers do not depend on it


def _draw(shape, name, rng):
    """LN scales near 1, LeCun-scaled kernels (peaked attention: well-separated scores), the rest O(0.1-0.5)."""
    if name == "scale":
        return 1.0 + 0.1 * rng.standard_normal(shape)
    if name == "kernel":
        return rng.standard_normal(shape) / np.sqrt(np.prod(shape[:-1]))
    return (0.5 if name in ("cls_tokens", "pos_embed") else 0.1) * rng.standard_normal(shape)


@pytest.fixture(scope="module")
def models():
    abstract = nnx.eval_shape(lambda: build_model("dual_vit", NUM_CLASSES, kwargs=dict(CFG, num_attributes=NUM_ATTRS)))
    graph, state = nnx.split(abstract)
    rng = np.random.default_rng(0)
    pure = jax.tree_util.tree_map_with_path(
        lambda path, a: jnp.asarray(_draw(a.shape, path[-1].key, rng), a.dtype), nnx.to_pure_dict(state))
    nnx.replace_by_pure_dict(state, pure)
    model = nnx.merge(graph, state)
    peer = TorchDualViT.from_config(model.config)
    copy_from_anonvid(peer, pure)
    return model, peer


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(1)
    return (rng.random(CLIP, dtype=np.float32), rng.integers(0, NUM_CLASSES, CLIP[0]),
            rng.integers(0, 2, (CLIP[0], NUM_ATTRS)).astype(np.float32))


def test_forward_without_fusion_matches(models, batch):
    """Eval mode, keep rates overridden per call (0.5 then 0.7), fusion off: kept ids and logits."""
    keep_rates, fuse = (0.5, 0.7), False
    model, peer = models
    clips = batch[0]
    graph, params = nnx.split(model)
    out, aux = jax.jit(lambda p, x: nnx.merge(graph, p)(x, keep_rates=keep_rates, fuse=fuse),
                       compiler_options=FAST_COMPILE)(params, jnp.asarray(clips))
    peer.eval()
    with torch.no_grad():
        ref, ids = peer(torch.from_numpy(clips), keep_rates=keep_rates, fuse=fuse)
    np.testing.assert_array_equal(np.asarray(aux["kept_ids"]), ids.numpy())
    for head in ("action", "privacy"):
        np.testing.assert_allclose(np.asarray(out[head]), ref[head].numpy(), atol=1e-4, rtol=1e-4)


def test_fused_forward_and_training_loss_gradients_match(models, batch):
    """Configured pruning (0.75 at blocks 1 and 2, fusion on) in training mode: logits, kept ids, loss, grads."""
    model, peer = models
    clips, actions, attrs = batch
    graph, params = nnx.split(model)

    def loss_fn(params, x):
        out, aux = nnx.merge(graph, params)(x, train=True)
        loss = (optax.softmax_cross_entropy_with_integer_labels(out["action"], jnp.asarray(actions)).mean()
                + optax.sigmoid_binary_cross_entropy(out["privacy"], jnp.asarray(attrs)).mean())
        return loss, (out, aux["kept_ids"])

    (loss, (out, kept)), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True),
                                         compiler_options=FAST_COMPILE)(params, jnp.asarray(clips))
    grads = nnx.to_pure_dict(grads)
    peer.train()
    peer.zero_grad()
    ref, ids = peer(torch.from_numpy(clips))
    np.testing.assert_array_equal(np.asarray(kept), ids.numpy())
    assert kept.shape == (CLIP[0], 18)  # ceil(0.75 · ceil(0.75 · 32))
    for head in ("action", "privacy"):
        np.testing.assert_allclose(np.asarray(out[head]), ref[head].detach().numpy(), atol=1e-4, rtol=1e-4)
    ref_loss = (torch.nn.functional.cross_entropy(ref["action"], torch.from_numpy(actions))
                + torch.nn.functional.binary_cross_entropy_with_logits(ref["privacy"], torch.from_numpy(attrs)))
    ref_loss.backward()
    np.testing.assert_allclose(float(loss), ref_loss.item(), rtol=1e-5)
    chex.assert_trees_all_close(
        {"qkv0": grads["blocks"][0]["qkv"]["kernel"], "fc2_1": grads["blocks"][1]["fc2"]["kernel"],
         "pos": grads["pos_embed"], "cls": grads["cls_tokens"], "embed": grads["embed"]["kernel"].reshape(-1, 32)},
        {"qkv0": peer.blocks[0].qkv.weight.grad.T.numpy(), "fc2_1": peer.blocks[1].fc2.weight.grad.T.numpy(),
         "pos": peer.pos_embed.grad.numpy(), "cls": peer.cls_tokens.grad.numpy(),
         "embed": peer.embed.weight.grad.T.numpy()}, atol=1e-5, rtol=1e-4)
