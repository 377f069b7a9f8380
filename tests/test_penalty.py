"""Method C (METHODS.md C): UNet++ anonymizer, NT-Xent, the budget penalty's gradient, the minimax steps, the
non-finite guard, the checkpoint rule, identity export, the experiment's summaries, and bad input."""
import itertools
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

from anonvid import budget
from anonvid import sharding as shd
from anonvid.data import augment, synthetic
from anonvid.models.contrastive import nt_xent
from anonvid.models.registry import build_model
from anonvid.models.unet import UNetPlusPlus, apply_per_frame
from anonvid.protocols import penalty_table
from anonvid.trainers import adversarial as ADV
from anonvid.trainers import core, identity

FAST_COMPILE = {"xla_backend_optimization_level": 0}


# ----------------------------------------------------------------------------------------------- UNet++


def test_unetpp_has_the_nested_dense_skip_grid():
    model = nnx.eval_shape(lambda: UNetPlusPlus(3, widths=(4, 8, 16, 32), rngs=nnx.Rngs(0)))  # shapes only
    # L = 3: nodes X^{i,j}, j >= 1, i + j <= L → 3 + 2 + 1 = 6; node C_{i,j} takes j nodes of its level + one up
    assert [len(level) for level in model.nodes] == [3, 2, 1]
    for i, j in ((0, 1), (0, 3), (1, 2), (2, 1)):
        kernel = model.nodes[i][j - 1].conv1.kernel
        assert kernel.shape[2] == j * model.widths[i] + model.widths[i + 1]


@pytest.mark.parametrize("encoder", ["conv", "resnet"])
def test_unetpp_output_is_a_sigmoid_image_of_the_input_size(encoder):
    model = build_model("unetpp", 3, kwargs=dict(widths=(4, 8, 16), encoder=encoder))
    model.eval()
    x = jax.random.uniform(jax.random.key(0), (2, 18, 22, 3))  # not multiples of 4: padded and cropped back
    y = model(x)
    assert y.shape == x.shape and y.dtype == jnp.float32
    assert float(y.min()) > 0.0 and float(y.max()) < 1.0


def test_apply_per_frame_keeps_frames_and_channels_apart():
    """Per-frame application equals running the model on each frame alone (inference mode): no mixing of time
    or channels (the reference code's reshape scrambled both)."""
    model = build_model("unetpp", 3, kwargs=dict(widths=(4, 8)), seed=1)
    model.eval()
    clips = jax.random.uniform(jax.random.key(2), (2, 3, 8, 8, 3))
    out = apply_per_frame(model, clips)
    assert out.shape == clips.shape
    for b, t in itertools.product(range(2), range(3)):
        np.testing.assert_allclose(out[b, t], model(clips[b, t][None])[0], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="clips"):
        apply_per_frame(model, clips[0, 0, 0])


def test_unetpp_rejects_bad_widths_and_encoder():
    with pytest.raises(ValueError, match="widths"):
        UNetPlusPlus(3, widths=(8,), rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="encoder"):
        UNetPlusPlus(3, widths=(8, 16), encoder="vgg", rngs=nnx.Rngs(0))


# ----------------------------------------------------------------------------------------------- losses


def _nt_xent_loop(z1: np.ndarray, z2: np.ndarray, tau: float) -> float:
    """NT-Xent written out as in the SimCLR paper (eq. 1), one anchor at a time."""
    z = np.concatenate([z1, z2]).astype(np.float64)
    n2 = len(z)
    total = 0.0
    for i in range(n2):
        j = (i + n2 // 2) % n2
        sims = np.array([z[i] @ z[k] / tau for k in range(n2) if k != i])
        total += -(z[i] @ z[j] / tau) + np.log(np.exp(sims).sum())
    return total / n2


def test_nt_xent_matches_the_written_out_formula():
    rng = np.random.default_rng(0)
    z1, z2 = rng.normal(size=(5, 7)), rng.normal(size=(5, 7))
    z1 /= np.linalg.norm(z1, axis=1, keepdims=True)
    z2 /= np.linalg.norm(z2, axis=1, keepdims=True)
    for tau in (0.1, 0.5):
        np.testing.assert_allclose(float(nt_xent(jnp.asarray(z1), jnp.asarray(z2), tau)), _nt_xent_loop(z1, z2, tau),
                                   rtol=1e-5)
    # identical, well separated views: the positive dominates every negative
    eye = np.eye(4)
    assert float(nt_xent(jnp.asarray(eye), jnp.asarray(eye), 0.1)) < 1e-3
    with pytest.raises(ValueError, match="temperature"):
        nt_xent(jnp.asarray(eye), jnp.asarray(eye), 0.0)


def test_contrastive_encoder_gives_unit_embeddings():
    model = build_model("contrastive", 16, kwargs=dict(proj_hidden=32, depth=10, width=4, stem="small"), seed=0)
    z = nnx.jit(lambda m, x: m(x))(model, jax.random.uniform(jax.random.key(0), (3, 16, 16, 3)))
    assert z.shape == (3, 16)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(z), axis=1), 1.0, rtol=1e-5)


def test_budget_penalty_gradient_reaches_the_anonymizer_only_above_the_budget():
    """The hinge carries gradient to f_A's parameters when RMS(x − f_A(x)) > B and none when it is below (the
    reference code's float() made B a no-op)."""
    model = build_model("unetpp", 3, kwargs=dict(widths=(4, 8)))
    model.eval()
    graph, params, rest = nnx.split(model, nnx.Param, ...)
    x = jax.random.uniform(jax.random.key(3), (2, 2, 8, 8, 3))

    def penalty(p, b):
        m = nnx.merge(graph, p, rest)
        return budget.hinge(budget.rms(x, apply_per_frame(m, x)), b, 1.0)

    dist = float(budget.rms(x, apply_per_frame(model, x)))
    assert 0.05 < dist < 0.9
    grad = jax.jit(jax.grad(penalty))  # one compile for both budgets (op-by-op autodiff of a UNet is slow)
    above = grad(params, dist / 2)
    below = grad(params, min(dist * 2, 0.99))
    assert float(optax_norm(above)) > 1e-4
    assert float(optax_norm(below)) == 0.0
    assert float(penalty(params, dist / 2)) == pytest.approx(dist / 2, rel=1e-5)


def optax_norm(tree) -> jax.Array:
    return jnp.sqrt(sum(jnp.sum(jnp.square(leaf)) for leaf in jax.tree.leaves(tree)))


def test_rms_of_identical_inputs_has_a_finite_gradient():
    g = jax.grad(lambda a: budget.rms(a, jnp.ones(4)))(jnp.ones(4))
    assert np.all(np.isfinite(np.asarray(g)))


@pytest.mark.parametrize("b", [0.0, -0.3])
def test_non_positive_budget_is_refused(b):
    with pytest.raises(ValueError, match="budget B must be > 0"):
        budget.check_budget(b)
    with pytest.raises(ValueError, match="budget B must be > 0"):
        ADV.check_config(ADV.default_config(smoke=True, **{"budget.B": b}))


def test_unknown_penalty_kind_is_refused():
    with pytest.raises(ValueError, match="kind"):
        ADV.check_config(ADV.default_config(smoke=True, **{"budget.kind": "perceptual"}))


def test_missing_identity_checkpoint_is_a_clear_error(tmp_path):
    cfg = ADV.default_config(smoke=True, **{"anonymizer.init": str(tmp_path / "nowhere")})
    with pytest.raises(FileNotFoundError, match="configs/penalty.py:synthetic,identity"):
        ADV.check_config(cfg)
    with pytest.raises(FileNotFoundError, match="no exported anonymizer"):
        identity.load_anonymizer(str(tmp_path))


# ----------------------------------------------------------------------------------------------- minimax steps


@pytest.fixture(scope="module")
def built():
    # The same config, shapes and options as the reference run of tests/workers/sharded_penalty.py: that worker
    # then finds these compiled programs in the session's persistent compilation cache.
    cfg = ADV.default_config(smoke=True, compiler_options=FAST_COMPILE)
    fns, txs, state, shardings, mesh, rules = ADV.build(cfg, 3, mesh=shd.make_mesh((("data", 1), ("model", 1)),
                                                                                  devices=jax.devices()[:1]))
    batch_sh = shd.batch_sharding(mesh, rules)
    views = augment.ClipAugment.from_config(cfg.privacy.augment.to_dict())
    steps = {
        "anonymizer": ADV.make_anonymizer_step(fns, txs["anonymizer"], shardings, batch_sh, budget=0.05, weight=1.0,
                                               kind="pixel", omega=1.0, temperature=0.1, views=views,
                                               compiler_options=FAST_COMPILE),
        "branches": ADV.make_branches_step(fns, txs, shardings, batch_sh, temperature=0.1, views=views,
                                           compiler_options=FAST_COMPILE),
    }
    rng = np.random.default_rng(0)
    batch = {"video": rng.integers(0, 256, (8, 4, 16, 16, 3), dtype=np.uint8),
             "action": rng.integers(0, 3, 8).astype(np.int32),
             "images": rng.integers(0, 256, (8, 16, 16, 3), dtype=np.uint8)}
    return {"state": state, "steps": steps, "batch": jax.device_put(batch, batch_sh)}


def _copy(tree):
    return jax.tree.map(lambda x: np.array(x), tree)


def _changed(before, after) -> bool:
    return any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(after)))


def test_step_one_updates_only_the_anonymizer_and_step_two_only_the_branches(built):
    state = jax.tree.map(jnp.array, built["state"])
    before = _copy(state)
    state, m1 = built["steps"]["anonymizer"](state, built["batch"])
    after1 = _copy(state)
    assert _changed(before["anonymizer"]["params"], after1["anonymizer"]["params"])
    for net in ("action", "privacy"):
        assert not _changed(before[net], after1[net])
    assert float(m1["finite"]) == 1.0 and float(m1["distance"]) > 0.05 and float(m1["penalty"]) > 0
    np.testing.assert_allclose(float(m1["loss"]), float(m1["action_loss"] - m1["privacy_loss"] + m1["penalty"]),
                               rtol=1e-5)
    state, m2 = built["steps"]["branches"](state, built["batch"])
    after2 = _copy(state)
    assert not _changed(after1["anonymizer"], after2["anonymizer"])
    for net in ("action", "privacy"):
        assert _changed(after1[net]["params"], after2[net]["params"])
    assert int(after2["step"]) == 2 and float(m2["finite"]) == 1.0


def test_a_non_finite_step_changes_nothing_and_is_counted(built):
    state = jax.tree.map(jnp.array, built["state"])
    leaf_path = jax.tree.leaves_with_path(state["anonymizer"]["params"])[0][0]
    poisoned = jax.tree_util.tree_map_with_path(
        lambda p, x: jnp.full_like(x, jnp.nan) if p == leaf_path else x, state["anonymizer"]["params"])
    state["anonymizer"] = dict(state["anonymizer"], params=poisoned)
    before = _copy(state)
    for expected_run in (1, 2):
        state, m = built["steps"]["anonymizer"](state, built["batch"])
        assert float(m["finite"]) == 0.0
        assert int(state["nonfinite"]["run"]) == expected_run == int(state["nonfinite"]["max_run"])
    after = _copy(state)
    for a, b in zip(jax.tree.leaves(before["anonymizer"]), jax.tree.leaves(after["anonymizer"])):
        np.testing.assert_array_equal(a, b)  # NaN == NaN under assert_array_equal
    assert int(after["nonfinite"]["total"]) == 2
    guard = ADV.nonfinite_guard(2)
    with pytest.raises(FloatingPointError, match="2 non-finite steps in a row"):
        guard({"nonfinite_max_run": 2.0, "nonfinite_total": 2.0}, 7)
    guard({"nonfinite_max_run": 1.0, "nonfinite_total": 5.0}, 7)  # scattered non-finite steps do not stop a run


def test_alternation_after_the_warm_up():
    stepper = ADV.AlternatingStep(None, None, warmup_steps=3, start=0)
    assert [stepper.phase(i) for i in range(8)] == ["branches"] * 3 + ["anonymizer", "branches"] * 2 + ["anonymizer"]


# ----------------------------------------------------------------------------------------------- selection


def _record(epoch, top1, privacy_loss, phase="minimax"):
    return {"epoch": epoch, "step": 10 * epoch, "val_top1": top1, "val_privacy_loss": privacy_loss, "phase": phase}


def test_checkpoint_rule_takes_the_most_private_checkpoint_within_delta():
    history = [_record(1, 0.90, 1.0, "warmup"), _record(2, 0.88, 2.5), _record(3, 0.70, 3.9), _record(4, 0.86, 2.7),
               _record(5, 0.84, 2.9)]
    sel = ADV.select_checkpoint(history, raw_top1=0.90, delta=0.05)
    assert (sel["epoch"], sel["step"]) == (4, 40)  # epoch 3 is more private but 20 points down; 5 is 6 down
    assert sel["candidates"] == [2, 4]
    assert "within δ=0.050" in sel["reason"] and "0.9000" in sel["reason"]


def test_checkpoint_rule_says_when_nothing_is_within_delta():
    history = [_record(1, 0.50, 3.0), _record(2, 0.60, 2.0)]
    sel = ADV.select_checkpoint(history, raw_top1=0.90, delta=0.05)
    assert sel["epoch"] == 2 and sel["candidates"] == []
    assert sel["reason"].startswith("no minimax checkpoint reached")
    with pytest.raises(ValueError, match="no minimax checkpoint"):
        ADV.select_checkpoint([_record(1, 0.9, 1.0, "warmup")], raw_top1=0.9, delta=0.05)


# ----------------------------------------------------------------------------------------------- data checks


def test_mismatched_frame_sizes_between_action_and_privacy_inputs_are_refused():
    train = synthetic.actions_split("train", 8, seed=0, num_frames=4, height=32, width=32)
    images = np.zeros((8, 24, 24, 3), np.uint8)
    with pytest.raises(ValueError, match="privacy images are 24×24 but the action frames are 32×32"):
        ADV.train_penalty(ADV.default_config(smoke=True), train, images, train, images,
                          num_classes=len(synthetic.ACTIONS))


def test_identity_export_round_trip(tmp_path):
    cfg = identity.default_config(smoke=True)
    model = build_model("unetpp", 3, kwargs=cfg.model.kwargs.to_dict(), seed=3)
    _, params, stats = core.split_model(model)
    path = identity.export_anonymizer(str(tmp_path / "run" / identity.EXPORT_DIR), cfg.model, params, stats,
                                      {"note": "test"})
    loaded = identity.load_anonymizer(str(tmp_path / "run"))  # a run folder finds its export
    model.eval()
    x = jax.random.uniform(jax.random.key(0), (2, 8, 8, 3))
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-6)
    assert os.path.isdir(path)


def test_frames_of_takes_distinct_frames_of_each_clip():
    clips = np.arange(2 * 5).reshape(2, 5, 1, 1, 1).repeat(3, axis=-1).astype(np.uint8)
    frames = identity.frames_of(clips, 3, seed=0)
    assert frames.shape == (6, 1, 1, 3)
    values = frames[:, 0, 0, 0].reshape(2, 3)
    assert all(len(set(v)) == 3 for v in values)
    assert set(values[0]) <= set(range(5)) and set(values[1]) <= set(range(5, 10))


# ----------------------------------------------------------------------------------------------- experiment


def _row(b, seed, top1, cmap):
    setting = penalty_table.setting_name(b, 1.0, 1.0, "pixel")
    return {"name": f"{setting} seed {seed}", "setting": setting, "B": b, "weight": 1.0,
            "omega": 1.0, "seed": seed, "top1": top1, "cmap": cmap, "f1": cmap / 100}


def test_summary_is_mean_and_sample_std_over_seeds_and_targets_are_checked():
    rows = [_row(0.3, 0, 0.90, 50.0), _row(0.3, 1, 0.86, 54.0), _row(0.3, 2, 0.88, 52.0),
            _row(0.9, 0, 0.60, 51.0)]
    summary = penalty_table.summarize(rows)
    first = summary[0]
    assert first["B"] == 0.3 and first["seeds"] == [0, 1, 2]
    assert first["top1"] == pytest.approx(0.88) and first["top1_std"] == pytest.approx(0.02)
    assert first["cmap_std"] == pytest.approx(np.std([50, 54, 52], ddof=1))
    assert summary[1]["cmap_std"] == 0.0  # one seed
    raw = {"top1": 0.91, "cmap": 70.0, "f1": 0.7}
    t = penalty_table.targets(raw, summary)
    b03 = t[penalty_table.setting_name(0.3, 1.0, 1.0, "pixel")]
    assert b03["top1_within_5_of_raw"] and b03["cmap_at_least_15_below_raw"]
    assert b03["top1_drop_points"] == pytest.approx(3.0) and b03["cmap_drop_points"] == pytest.approx(18.0)
    trend = t["trend λ=1 ω=1"]
    assert trend["top1_falls_with_B"] and trend["top1_range_points"] == pytest.approx(28.0)
    table = penalty_table.markdown_table(raw, summary)
    assert "88.00 ± 2.00" in table and "| raw | — | 91.00 | 70.00 |" in table


def test_sweep_runs_seed_major_and_checks_every_setting():
    cfg = ml_collections.ConfigDict(dict(sweep=dict(seeds=(0, 1), budgets=(0.3, 0.5), weights=(1.0,), omegas=(1.0,)),
                                         penalty=ADV.default_config(smoke=True).to_dict(), identity_init=""))
    order = [(s["seed"], s["B"]) for s in penalty_table.settings(cfg)]
    assert order == [(0, 0.3), (0, 0.5), (1, 0.3), (1, 0.5)]
    penalty_table.check_config(cfg)
    cfg.sweep.budgets = (0.3, 0.0)
    with pytest.raises(ValueError, match="budget B must be > 0"):
        penalty_table.check_config(cfg)


def test_zip_source_cycles_the_shorter_source():
    from anonvid.data import pipeline

    clips = pipeline.ArraySource({"video": np.arange(5), "action": np.arange(5) * 10})
    images = pipeline.ArraySource({"images": np.arange(3) + 100})
    zipped = pipeline.ZipSource(clips, images)
    assert len(zipped) == 5
    assert [int(zipped[i]["images"]) for i in range(5)] == [100, 101, 102, 100, 101]
    assert int(zipped[4]["action"]) == 40
    with pytest.raises(ValueError, match="more than one zipped source"):
        pipeline.ZipSource(clips, clips)[0]
    with pytest.raises(IndexError):
        zipped[5]


def test_image_privacy_data_becomes_one_frame_clips_for_the_attacker():
    """The VISPR1 protocol: privacy images (no action) are the attacker's data, as one-frame clips; the privacy
    branch trains on the images themselves."""
    images = np.arange(4 * 8 * 8 * 3, dtype=np.uint8).reshape(4, 8, 8, 3)
    labels = np.eye(4, 7, dtype=np.int32)
    clips = penalty_table.as_clips({"image": images, "privacy": labels})
    assert clips["video"].shape == (4, 1, 8, 8, 3) and np.array_equal(clips["video"][:, 0], images)
    assert np.array_equal(clips["privacy"], labels)
    np.testing.assert_array_equal(penalty_table.privacy_images({"image": images}, seed=0), images)
    video = np.stack([images, images + 1], axis=1)  # (4, 2, 8, 8, 3): one frame per clip when no images exist
    frames = penalty_table.privacy_images({"video": video}, seed=0)
    assert frames.shape == (4, 8, 8, 3)
    assert all(np.array_equal(f, images[i]) or np.array_equal(f, images[i] + 1) for i, f in enumerate(frames))


def test_identity_pretraining_is_its_own_experiment_and_exports_the_anonymizer(tmp_path):
    from anonvid import experiments
    from configs import penalty as penalty_config

    cfg = penalty_config.get_config("synthetic,identity,smoke")
    assert cfg.experiment == "identity"
    result = experiments.run_experiment(cfg, str(tmp_path / "identity"), progress=False)
    assert result["steps"] >= 1 and 0.0 < result["final"]["l1"] < 1.0 and result["final"]["psnr"] > 5.0
    model = identity.load_anonymizer(str(tmp_path / "identity"))  # what `identity_init` points at
    x = jax.random.uniform(jax.random.key(0), (2, 32, 32, 3))
    assert model(x).shape == x.shape
    run_cfg = penalty_config.get_config("synthetic,smoke")
    run_cfg.identity_init = str(tmp_path / "identity")
    penalty_table.check_config(run_cfg)  # accepted: the export is there
    run_cfg.identity_init = str(tmp_path / "elsewhere")
    with pytest.raises(FileNotFoundError, match="identity_init="):
        penalty_table.check_config(run_cfg)
