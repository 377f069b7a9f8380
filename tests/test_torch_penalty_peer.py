"""The PyTorch peer of the penalty-driven anonymizer (`bench/peers/torch_penalty.py`) computes what anonvid's
minimax computes.

With anonvid's parameters and batch statistics copied in, each of the three networks (UNet++ f_A, R3D f_T, the
contrastive f_B) gives the same outputs in eval and in training mode (atol 1e-5 on outputs in [0, 1] or unit
norm, 1e-4 on logits), and step 1 of the minimax on a fixed batch with augmentation off gives the same loss
terms and f_A gradient norm (rtol 1e-4). Sides of 18 pixels exercise the
UNet++'s edge padding and XLA's asymmetric "SAME" padding of the stride-2 convolutions. The speed benchmark then
compares like with like. Skipped when torch is not installed (it is only in the `[bench]` extra).
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

torch = pytest.importorskip("torch", reason="the PyTorch peer needs torch (pip install -e '.[bench]')")

from anonvid import sharding as shd  # noqa: E402
from anonvid.data import augment  # noqa: E402
from anonvid.models.registry import MODELS  # noqa: E402
from anonvid.trainers import adversarial  # noqa: E402
from bench.peers.torch_penalty import PenaltyPeer, copy_from_anonvid  # noqa: E402

NUM_CLASSES = 4
B, T, S = 2, 4, 18
BUDGET = 0.1  # below the random anonymizer's pixel RMS: the hinge is active and carries gradient
FAST_COMPILE = {"xla_backend_optimization_level": 0}
NO_AUG = augment.ClipAugment(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip=False, jitter=0.0, erase_prob=0.0,
                             grey_prob=0.0)


def _config():
    cfg = adversarial.default_config(smoke=True)
    cfg.anonymizer.model.kwargs.widths = (4, 8, 16)  # depth 2: nested nodes with three inputs
    cfg.budget.B = BUDGET
    return cfg


def _draw(path, shape, rng):
    """He-scaled kernels; BN scale/bias and running statistics away from their init (zero-init scales would hide
    residual branches, and identity statistics would hide an eval-mode mix-up)."""
    name = path[-1].key
    if name == "kernel":
        return rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[:-1]))
    if name == "scale":
        return 1.0 + 0.1 * rng.standard_normal(shape)
    if name == "var":
        return 1.0 + 0.2 * rng.random(shape)
    return 0.1 * rng.standard_normal(shape)  # bias, mean


def _drawn_model(name, num_outputs, *, kwargs=None, dtype="float32", seed=0):
    """`build_model` without compiling an initialiser: an abstract model filled with numpy draws (saves ~13 s)."""
    kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in dict(kwargs or {}).items()}
    abstract = nnx.eval_shape(lambda: MODELS[name](num_outputs, kw, jnp.float32, nnx.Rngs(seed)))
    graph, state = nnx.split(abstract)
    rng = np.random.default_rng(seed)
    pure = jax.tree_util.tree_map_with_path(lambda p, a: jnp.asarray(_draw(p, a.shape, rng), a.dtype),
                                            nnx.to_pure_dict(state))
    nnx.replace_by_pure_dict(state, pure)
    return nnx.merge(graph, state)


@pytest.fixture(scope="module")
def setup():
    cfg = _config()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(adversarial, "build_model", _drawn_model)
        fns, txs, state, shardings, mesh, rules = adversarial.build(cfg, NUM_CLASSES)
    privacy = dict(cfg.privacy.model.kwargs, proj_dim=cfg.privacy.model.proj_dim)
    peer = PenaltyPeer(NUM_CLASSES, anonymizer=dict(cfg.anonymizer.model.kwargs), action=dict(cfg.action.model.kwargs),
                       privacy=privacy, lrs=(cfg.anonymizer.lr, cfg.action.lr, cfg.privacy.lr), budget=BUDGET,
                       weight=cfg.budget.weight, omega=cfg.omega, temperature=cfg.privacy.temperature, augment=None)
    for net, module in zip(adversarial.NETS, peer.nets):
        copy_from_anonvid(module, nnx.to_pure_dict(state[net]["params"]),
                          nnx.to_pure_dict(state[net]["batch_stats"]))
    data = np.random.default_rng(1)
    batch = {"video": data.integers(0, 256, (B, T, S, S, 3)).astype(np.uint8),
             "action": data.integers(0, NUM_CLASSES, B).astype(np.int32),
             "images": data.integers(0, 256, (B, S, S, 3)).astype(np.uint8)}
    return cfg, fns, txs, state, shardings, mesh, rules, peer, batch


def _jax_forwards(fns, state, inputs, train):
    """The three networks' outputs in one compiled function (one compilation per mode)."""

    def run(state, inputs):
        return {net: nnx.merge(fns[net].train_graph if train else fns[net].eval_graph, state[net]["params"],
                               state[net]["batch_stats"], copy=True)(inputs[net]) for net in adversarial.NETS}

    sub = {net: {k: state[net][k] for k in ("params", "batch_stats")} for net in adversarial.NETS}
    out = jax.jit(run, compiler_options=FAST_COMPILE)(sub, jax.tree.map(jnp.asarray, inputs))
    return {k: np.asarray(v) for k, v in out.items()}


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_networks_match(setup, train):
    """f_A on frames, f_T on clips, f_B on images: the same outputs in eval and training (batch-stat) mode."""
    _, fns, _, state, _, _, _, peer, batch = setup
    clips = batch["video"].astype(np.float32) / 255.0
    images = batch["images"].astype(np.float32) / 255.0
    frames = clips.reshape((B * T, S, S, 3))
    saved = [{k: v.clone() for k, v in m.state_dict().items()} for m in peer.nets]
    for m in peer.nets:
        m.train(train)
    with torch.no_grad():
        ref_a = peer.f_a(peer.images(frames)).permute(0, 2, 3, 1).numpy()
        ref_t = peer.f_t(peer.clips(clips)).numpy()
        ref_b = peer.f_b(peer.images(images)).numpy()
    for m, sd in zip(peer.nets, saved):  # a training-mode forward updates torch's running statistics in place
        m.load_state_dict(sd)
    out = _jax_forwards(fns, state, {"anonymizer": frames, "action": clips, "privacy": images}, train)
    out_a, out_t, out_b = out["anonymizer"], out["action"], out["privacy"]
    assert out_a.shape == (B * T, S, S, 3) and out_b.shape == ref_b.shape
    np.testing.assert_allclose(out_a, ref_a, atol=1e-5)
    np.testing.assert_allclose(out_t, ref_t, atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(out_b, ref_b, atol=1e-5)


def test_anonymizer_step_matches(setup):
    """Step 1 on one fixed batch without augmentation: L_T, L_B, the penalty, the distance, the total loss and
    f_A's gradient norm. (Step 2's losses are CE and NT-Xent of the networks compared in `test_networks_match`:
    f_A in eval mode, f_T and f_B in training mode; its compilation would double this file's time.)"""
    cfg, fns, txs, state, shardings, mesh, rules, peer, batch = setup
    batch_sh = shd.batch_sharding(mesh, rules)
    step1 = adversarial.make_anonymizer_step(
        fns, txs["anonymizer"], shardings, batch_sh, budget=BUDGET, weight=cfg.budget.weight, kind="pixel",
        omega=cfg.omega, temperature=cfg.privacy.temperature, views=NO_AUG, compiler_options=FAST_COMPILE)
    _, m1 = step1(jax.tree.map(jnp.copy, state), jax.device_put(batch, batch_sh))  # the step donates its state
    r1 = peer.anonymizer_step(peer.clips(batch["video"]), torch.from_numpy(batch["action"]).long(),
                              peer.images(batch["images"]))
    assert float(m1["penalty"]) > 0  # the hinge is active, so its gradient is part of the comparison
    for k in ("loss", "action_loss", "privacy_loss", "penalty", "distance", "grad_norm"):
        np.testing.assert_allclose(float(m1[k]), r1[k], rtol=1e-4, err_msg=f"step 1 {k}")
