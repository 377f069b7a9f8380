"""The pruner trainer (METHODS.md A) and the pruning anonymizer: gradient reversal, DANN ramp, a smoke run with
its checkpoint round trip, the anonymizer's pixels, and the two masking baselines."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from anonvid import prune_anonymizer as PA
from anonvid import pruning
from anonvid.data import synthetic
from anonvid.models import layers
from anonvid.models.dual_vit import DualViT
from anonvid.trainers import dual_vit as T

# Backend optimisation level 0 roughly halves these small programs' CPU compile time; results do not depend on it.
FAST_COMPILE = {"xla_backend_optimization_level": 0}
SMALL = dict(dim=16, depth=2, num_heads=2, num_frames=4, image_size=(16, 16), tubelet=(2, 4, 4),
             prune_blocks=(1, 2), keep_rates=(0.75, 0.75))


def test_gradient_reversal_negates_and_scales_the_gradient():
    x = jnp.arange(3.0)
    w = jnp.array([1.0, -2.0, 0.5])
    np.testing.assert_array_equal(layers.gradient_reversal(x, 0.3), x)
    g = jax.grad(lambda v: jnp.sum(layers.gradient_reversal(v, 0.3) * w))(x)
    np.testing.assert_allclose(g, -0.3 * w, rtol=1e-6)


def test_dann_ramp():
    np.testing.assert_allclose(T.dann_coefficient(0.0), 0.0, atol=1e-7)
    np.testing.assert_allclose(T.dann_coefficient(1.0), 2 / (1 + np.exp(-10)) - 1, rtol=1e-6)
    np.testing.assert_allclose(T.dann_coefficient(0.5, gamma=2.0), 2 / (1 + np.exp(-1.0)) - 1, rtol=1e-6)


def test_adversarial_mode_reverses_only_the_backbone_gradient():
    """With the GRL the privacy head's gradient is unchanged and every backbone gradient is −coeff × the plain one."""
    model = DualViT(3, num_attributes=2, rngs=nnx.Rngs(0), **SMALL)
    graph, params = nnx.split(model, nnx.Param)
    x = jax.random.uniform(jax.random.key(1), (2, 4, 16, 16, 3))
    y = jnp.array([[1.0, 0.0], [0.0, 1.0]])

    def grads(p):
        def loss(p, grl):
            out, _ = nnx.merge(graph, p)(x, privacy_grl=grl)
            return jnp.mean((out["privacy"] - y) ** 2)
        return jax.grad(loss)(p, None), jax.grad(loss)(p, 0.5)

    plain, reversed_ = (dict(nnx.to_flat_state(g)) for g in jax.jit(grads, compiler_options=FAST_COMPILE)(params))
    for path, g in plain.items():
        r = reversed_[path]
        if path[0] == "privacy_head":
            np.testing.assert_allclose(r[...], g[...], rtol=1e-5, atol=1e-7)
        elif path[0] != "action_head":
            np.testing.assert_allclose(r[...], -0.5 * g[...], rtol=1e-4, atol=1e-7)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    work = str(tmp_path_factory.mktemp("pruner"))
    train = synthetic.actions_split("train", 16, seed=0, num_frames=8, height=32, width=32)
    test = synthetic.actions_split("test", 8, seed=0, num_frames=8, height=32, width=32)
    cfg = T.default_config(smoke=True, batch_size=8, epochs=2)
    cfg.compiler_options = FAST_COMPILE
    out = T.train_pruner(cfg, train, test, num_classes=7, num_attributes=5, workdir=work, progress=False)
    return work, out, test


def test_smoke_run_reports_every_metric(smoke_run):
    _, out, _ = smoke_run
    assert [h["epoch"] for h in out["history"]] == [1, 2]
    final = out["final"]
    for key in ("top1", "privacy_cmap", "privacy_f1", "score_auroc", "privacy_kept", "other_kept", "kept_fraction"):
        assert np.isfinite(final[key]), key
    # the smoke model prunes at blocks 1 and 2 with keep 0.9: 256 → ceil(230.4) = 231 → ceil(207.9) = 208
    assert final["kept_fraction"] == pytest.approx(208 / 256)


def test_load_pruner_restores_the_trained_model(smoke_run):
    work, out, test = smoke_run
    model = T.load_pruner(work)
    trained = nnx.merge(out["fns"].eval_graph, out["state"]["params"], out["state"]["batch_stats"])
    x = jnp.asarray(test["video"][:2], jnp.float32) / 255.0
    forward = jax.jit(lambda m, c: m(c)[0]["action"], compiler_options=FAST_COMPILE)
    np.testing.assert_allclose(forward(model, x), forward(trained, x), rtol=1e-6, atol=1e-6)
    assert out["final"]["kept_fraction"] == PA.kept_tubelets(model) / model.config.num_tubelets


def test_anonymize_prune_blackens_the_pruned_tubelets_of_a_video_file(smoke_run, tmp_path):
    """`anonvid anonymize --method prune` on a 48x64 file: every pixel is either the input's or black, and the
    black share of each model clip is the pruned share of tubelets (the mask is upsampled from 32x32)."""
    from anonvid import cli
    from anonvid.data.video_io import read_video
    from anonvid.video import testclip

    work, _, _ = smoke_run
    src = str(tmp_path / "in.mkv")
    frames = testclip.write(src, num_frames=20, height=48, width=64, codec="ffv1", audio=False) | 1  # no 0 pixel
    testclip.write(src, video=frames, codec="ffv1", audio=False)
    out = tmp_path / "pruned.mkv"
    assert cli.main(["anonymize", src, "-o", str(out), "--method", "prune", "--checkpoint", work, "--codec", "ffv1",
                     "--no-progress"]) == 0
    got = read_video(out)[0]
    assert got.shape == frames.shape
    black = np.all(got == 0, axis=-1)
    assert np.all(black | np.all(got == frames, axis=-1))
    # clips of 8 frames (the model's num_frames); 208 of 256 tubelets kept; the last clip is padded
    for start in (0, 8):
        assert black[start:start + 8].mean() == pytest.approx(48 / 256, abs=0.03)


def test_load_pruner_without_a_run_says_how_to_make_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="holds no pruner run"):
        T.load_pruner(str(tmp_path))


def test_bad_trainer_config_is_rejected():
    with pytest.raises(ValueError, match="privacy_mode"):
        T.check_config(T.default_config(smoke=True, privacy_mode="friendly"))
    with pytest.raises(ValueError, match="unknown config field"):
        T.default_config(smoke=True, **{"optim.learning_rate": 1.0})


def test_anonymizer_blacks_out_exactly_the_pruned_tubelets():
    model = DualViT(3, num_attributes=2, rngs=nnx.Rngs(0), **SMALL)
    x = jax.random.uniform(jax.random.key(2), (2, 4, 16, 16, 3), minval=0.1, maxval=1.0)
    anon, aux = jax.jit(lambda c: PA.prune_clips(model, c), compiler_options=FAST_COMPILE)(x)
    kept = np.asarray(aux["kept_ids"])
    assert kept.shape == (2, PA.kept_tubelets(model))
    tiles = np.asarray(anon).reshape(2, 2, 2, 4, 4, 4, 4, 3).transpose(0, 1, 3, 5, 2, 4, 6, 7).reshape(2, 32, -1)
    orig = np.asarray(x).reshape(2, 2, 2, 4, 4, 4, 4, 3).transpose(0, 1, 3, 5, 2, 4, 6, 7).reshape(2, 32, -1)
    for b in range(2):
        keep = np.zeros(32, bool)
        keep[kept[b]] = True
        np.testing.assert_array_equal(tiles[b][keep], orig[b][keep])
        assert np.all(tiles[b][~keep] == 0)
    fn = jax.jit(PA.make_anonymizer(model, keep_rates=(0.5, 0.5)), compiler_options=FAST_COMPILE)
    assert np.mean(np.asarray(fn(x)) == 0) == pytest.approx(1 - 8 / 32)  # 32 → 16 → 8 tubelets
    with pytest.raises(ValueError, match="keep"):
        PA.make_anonymizer(model, keep_rates=(1.5, 0.5))
    with pytest.raises(ValueError, match="fill"):
        PA.make_anonymizer(model, fill="pink")


def test_random_pruning_keeps_k_tubelets_per_clip_with_its_own_draw():
    white = {"video": np.full((5, 4, 16, 16, 3), 255, np.uint8)}
    fn = PA.random_pruning(grid=(2, 4, 4), tubelet=(2, 4, 4), keep=12, seed=3)
    out = fn(white, "test")["video"]
    kept = (out.reshape(5, 2, 2, 4, 4, 4, 4, 3) > 0).all(axis=(2, 4, 6, 7))  # (clip, t', h', w') tubelet kept
    assert (out.reshape(5, 2, 2, 4, 4, 4, 4, 3) > 0).any(axis=(2, 4, 6, 7)).sum(axis=(1, 2, 3)).tolist() == [12] * 5
    assert kept.sum(axis=(1, 2, 3)).tolist() == [12] * 5
    assert len({kept[i].tobytes() for i in range(5)}) == 5  # every clip its own draw
    np.testing.assert_array_equal(fn(white, "test")["video"], out)  # deterministic
    assert not np.array_equal(fn(white, "train")["video"], out)  # splits draw differently
    with pytest.raises(ValueError, match="keep"):
        PA.random_pruning(grid=(2, 4, 4), tubelet=(2, 4, 4), keep=0)


def test_mask_blackening_blackens_the_ground_truth_pixels_only():
    rng = np.random.default_rng(0)
    video = rng.integers(1, 256, (2, 3, 8, 8, 3), dtype=np.uint8)
    mask = rng.integers(0, 2, (2, 3, 8, 8), dtype=np.uint8)
    out = PA.mask_blackening()({"video": video, "action_mask": mask}, "test")["video"]
    assert np.all(out[mask == 1] == 0)
    np.testing.assert_array_equal(out[mask == 0], video[mask == 0])
    grown = PA.mask_blackening(dilate=1)({"video": video, "action_mask": mask}, "test")["video"]
    assert (grown == 0).all(axis=-1).sum() >= (out == 0).all(axis=-1).sum()
    with pytest.raises(ValueError, match="no 'action_mask'"):
        PA.mask_blackening()({"video": video}, "test")


def test_score_quality_hand_worked():
    """One clip, a 1×1×4 grid of 1×2×2 tubelets; tubelets 0 and 2 are privacy tubelets (fraction 1 and 0.75).

    Stage 1 scores [-1, 2, 0.5, 3]: −score ranks 0 (1.0) > 2 (−0.5) > 1 > 3, AUROC 1. Stage 1 keeps {1, 2, 3}
    (drops 0); stage 2 scores them [1, 2, -5] (ids 1, 2, 3) and keeps {1, 2} (drops 3, a non-privacy tubelet).
    """
    mask = np.zeros((1, 1, 2, 8), np.uint8)
    mask[0, 0, :, 0:2] = 1
    mask[0, 0, :, 4:6] = [[1, 1], [1, 0]]
    q = T.score_quality([np.array([[-1.0, 2.0, 0.5, 3.0]]), np.array([[1.0, 2.0, -5.0]])],
                        [np.array([[0, 1, 2, 3]]), np.array([[1, 2, 3]])], mask, np.array([[1, 2]]), (1, 2, 2))
    assert q["score_auroc"] == 1.0
    # stage 2: privacy {2} scores 2 against others {1: 1, 3: -5}: −score of 2 is the lowest → AUROC 0
    assert q["score_auroc_stage2"] == 0.0
    # order values: 0 → 1 + 0/4, 3 → 2 + 0/3, 1 → 3, 2 → 3 (tie); privacy {0, 2} vs other {1, 3}:
    # pairs (0,1) win, (0,3) win, (2,1) tie, (2,3) lose → (1 + 1 + 0.5 + 0) / 4
    assert q["prune_order_auroc"] == 0.625
    assert q["privacy_kept"] == 0.5 and q["other_kept"] == 0.5
    assert pruning.NUM_CLS == 2
